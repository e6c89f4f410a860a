"""Named public data sets: where they come from, how to get them, and loading them by name.

:func:`load` reads a set from a local folder: the ``data_dir`` argument, else ``$ACCORD_DATA_DIR``, else (only when
neither names a folder) the repository's ``../shared/datasets`` (the development copy) when it exists; then the
download cache (``$ACCORD_CACHE_DIR`` or ``~/.cache/accord``), where downloads go. A named folder that lacks a set is
never silently replaced by the shared copy. The folder holds one sub-folder per source, laid out
as the sources publish them::

    <data_dir>/ukp-convarg1/UKPConvArg1-full-XML/*.xml, UKPConvArg1Strict-CSV/*.csv
    <data_dir>/pandalm/testset-v1.json, gpt-3.5-turbo-testset-v1.json, pandalm-7b-testset-v1.json
    <data_dir>/snow2008/{rte,temp,wsd}.standardized.tsv
    <data_dir>/vldb17/<set>/answer.csv, truth.csv

``data_dir`` may also name one source folder itself (``load("pandalm", ".../pandalm")``).

When no local copy has the files, they are downloaded from their public home into the cache and checked against the
sha256 recorded here (computed from the copies in ``shared/datasets``). Files published as they are (UKPConvArg1,
PandaLM, Snow 2008) are verified byte for byte. The VLDB sets are published only inside ``datasets.zip``, whose
own checksum cannot be known here (only its extracted files were kept), so the zip is not verified; the files
extracted from it are. Without network every failure ends in one :class:`AccordError` line that
says where to put the files by hand.

The public GitHub commits are pinned as the shared README abbreviates them; GitHub resolves abbreviated commit ids in
``/raw/`` URLs. Should it ever refuse one, put the full id in :data:`SOURCES`; the checksums guarantee that a moved or
changed file is never accepted silently.

The Hugging Face Hub sets (MultiPref, HelpSteer2/3, summarize-from-feedback) are not in this registry: download them
with the Hub's own tools and read them with :mod:`accord.datasets.loaders.hub`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import accord
from accord.datasets.errors import AccordError, SettingError
from accord.datasets.io import atomic_path
from accord.datasets.loaders import pandalm, snow, ukp, ukp2, vldb
from accord.datasets.loaders.generic import ENV_DATA_DIR, default_cache_dir, repository_datasets_dir
from accord.datasets.schema import gold_labels, table_info

#: Public homes of the sources, pinned to the commits the shared copies were taken from.
SOURCES: dict[str, dict[str, str]] = {
    "ukp-convarg1": {"repo": "UKPLab/acl2016-convincing-arguments", "commit": "ca9d24e4", "path": "data"},
    "pandalm": {"repo": "WeOpenML/PandaLM", "commit": "3871806e", "path": "data"},
    "snow2008": {"repo": "edwinrobots/bayesian_combination_tutorial2", "commit": "f98448e2",
                 "path": "all_collected_data"},
    "vldb17": {"repo": "zhydhkcws/zhydhkcws.github.io", "commit": "a9d529c1",
               "path": "crowd_truth_inference/datasets.zip"},
}

# sha256 of the UKPConvArg1 files, as published (sha256sum output, paths relative to data/; long lines are data).
_UKP_SHA256 = """
27a58eed6877749b6cb7337691438a11b0b02aca21c3d2313a751fcc684bc9a2  UKPConvArg1-full-XML/ban-plastic-water-bottles_no-bad-for-the-economy.xml
2e0a9e3400484f06f23a1ec45af1c1b0fa5c1621ea787d5db337a6c4e8e4d182  UKPConvArg1-full-XML/ban-plastic-water-bottles_yes-emergencies-only.xml
030d9c1966555c8e9f5a182bec8a7beb74fe5c20820e1d264944000c93e9b439  UKPConvArg1-full-XML/christianity-or-atheism-_atheism.xml
0562624bf8e079c4132730bd5c0d57202662157ab10370164b31bb52acacbdff  UKPConvArg1-full-XML/christianity-or-atheism-_christianity.xml
61a0fdde8d1bab2cf2b674526f20cbf7a4564861062225cdf4540f5cf8d4102f  UKPConvArg1-full-XML/evolution-vs-creation_creation.xml
eb783caaa65bc4660bda8ee8e303d64d895e8dd6bfdcda71a6b1c9c21e188504  UKPConvArg1-full-XML/evolution-vs-creation_evolution.xml
7d8e9241900c120970f11aad23daa23fa8b2baf937d3f48f4f0568f8a93ea14a  UKPConvArg1-full-XML/firefox-vs-internet-explorer_it-has-a-cute-logo-oh-and-extensions-err-add-ons.xml
3b712e9bf9bec5454f3039d9dae38999dca25f5b27230e992d9b6dc5a88b0f8a  UKPConvArg1-full-XML/firefox-vs-internet-explorer_there-s-more-browsers-than-the-ie-firefox-is-an-animal.xml
b9cf264e41eab6ea07af741199a0b3861c5e95c75d947264748fadb0164cf24d  UKPConvArg1-full-XML/gay-marriage-right-or-wrong_allowing-gay-marriage-is-right.xml
177f52333cb8df1a854c3b2095cabe6dedc172b51d5e48cbf42270f0b4d5a4fc  UKPConvArg1-full-XML/gay-marriage-right-or-wrong_allowing-gay-marriage-is-wrong.xml
20e3033858d60f9247ea01e6d4c84f38ad6720d3256316445c7643d7ff8f5846  UKPConvArg1-full-XML/human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_no.xml
480139e39272fb2f66f7f3894559e1970cddc14e4b502bbfd9648efae8d22160  UKPConvArg1-full-XML/human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_yes.xml
10e290e275d38aaf1e8281af6fbf10d71ed7bfe73ceb72a2e25b880c5f850fb1  UKPConvArg1-full-XML/if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_no.xml
43d7ab10c927d84eb34f374b97e5f2e65fc0cc868084637cf03ab747227ce9d1  UKPConvArg1-full-XML/if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_yes.xml
53370c82cdde3bd7c4087af8b75c3214b9cfedeb0eae56f6f42391e3fd7baf41  UKPConvArg1-full-XML/india-has-the-potential-to-lead-the-world-_no-against.xml
4ba447e2987740279b92a58fbb265c790e9dd0a3d02907a6bce27709f51d9d4e  UKPConvArg1-full-XML/india-has-the-potential-to-lead-the-world-_yes-for.xml
ef6826183e785d103f4cad043d84187a0db901a2b5ac7f3fc36cb0ad11eddf39  UKPConvArg1-full-XML/is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_fatherless.xml
869e56198773bcf9f936df1c292b8c68c8f71005457639f20bcc0e2cd4c24b36  UKPConvArg1-full-XML/is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_lousy-father.xml
a9dad3a0fb4fc5b2c8ac86b889f9822ca0eb74b325327e26a52e4fb3e8199072  UKPConvArg1-full-XML/is-porn-wrong-_no-is-is-not.xml
454c18c589cdc726239e670887e5eca73fbe04d31506cb48b516b086f16b03e6  UKPConvArg1-full-XML/is-porn-wrong-_yes-porn-is-wrong.xml
b085d195b0518e719c7101086c913050f18affd2d31b3b1ad5fc9798ba29a453  UKPConvArg1-full-XML/is-the-school-uniform-a-good-or-bad-idea-_bad.xml
b4d73ad2bdac1027e034bd7cdf9969fd407f1f11d7df35f31de3c711d88245ce  UKPConvArg1-full-XML/is-the-school-uniform-a-good-or-bad-idea-_good.xml
cebbdddb277b941a5d26577b21b5fd2898b3b1c17079d2d05000ca1f1f96a5f1  UKPConvArg1-full-XML/personal-pursuit-or-advancing-the-common-good-_advancing-the-comnong-good.xml
a974bef3814eb1a83c1376bec689f6146ad3f4fc0a036da6885938d997c9c08f  UKPConvArg1-full-XML/personal-pursuit-or-advancing-the-common-good-_personal-pursuit.xml
4a09892fa7e8ea55321f0cf09c3e898ce32ed0078e1bb6f0991c90d06bbcc7e8  UKPConvArg1-full-XML/pro-choice-vs-pro-life_pro-choice.xml
c2c72cb3b32073d84b68ea9226d5fc208ec34af72169554d55299d31a319b7a3  UKPConvArg1-full-XML/pro-choice-vs-pro-life_pro-life.xml
cb0f9e465edc8596c56551757ddfc52a03b81923eafabb16d94dd09afdf3bbea  UKPConvArg1-full-XML/should-physical-education-be-mandatory-in-schools-_no-.xml
5320fe0b583b2b61fa4be2518601d725dd973950b125d9a19155806b8b1a221b  UKPConvArg1-full-XML/should-physical-education-be-mandatory-in-schools-_yes-.xml
c19e93cb3e067f81d349b8c5f68a5889a5ab8a97737774bcd166c0ff7eeb011b  UKPConvArg1-full-XML/tv-is-better-than-books_books.xml
8abe5abb83a532a2a3561486b8233211b7f4ee002b05db63d87eb6fe93bfafd3  UKPConvArg1-full-XML/tv-is-better-than-books_tv.xml
d306d44dec62268401cca39ba39bf0c22789b223726b8ec2e5954eea988c18a8  UKPConvArg1-full-XML/william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_no-it-is-raffles-.xml
a57e14dd4b83525534d102e718058a369c56f3067ad2525edb3b44612471129d  UKPConvArg1-full-XML/william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_yes-of-course-.xml
d1efc6d3f08a0167d6b71cf8f50ccb9d89da8e353162a712629dbaddee9fc883  UKPConvArg1Strict-CSV/ban-plastic-water-bottles_no-bad-for-the-economy.csv
f1b594fcd3feb274a819b9bdd59673034f555d89acbabe7c0b40adcfc8df13de  UKPConvArg1Strict-CSV/ban-plastic-water-bottles_yes-emergencies-only.csv
c9784346115d1275cab5fb6288a635e5a67b32110d73b2677629263e38a2f16e  UKPConvArg1Strict-CSV/christianity-or-atheism-_atheism.csv
e90ce4eabeb3c6a34ad772e34ba7f5255364fa27cd87eaf2406824af401e1dcb  UKPConvArg1Strict-CSV/christianity-or-atheism-_christianity.csv
722c40b9b2e6725036fcaca243fe7421deedf253f939a66a2c332e8a8395406b  UKPConvArg1Strict-CSV/evolution-vs-creation_creation.csv
0b8218b8b9bb8c3d7660a8b6008ddefc081c1d301de329dc7af796ab55f3a563  UKPConvArg1Strict-CSV/evolution-vs-creation_evolution.csv
9a33cbec5bcb9f3651bc3747117ed1faa9b7c3cf93a86a3ba3bab9d3435898b1  UKPConvArg1Strict-CSV/firefox-vs-internet-explorer_it-has-a-cute-logo-oh-and-extensions-err-add-ons.csv
101719aae383d31cc05195524a8a79efacca767268bf91c1f7ad2be5aca8cacd  UKPConvArg1Strict-CSV/firefox-vs-internet-explorer_there-s-more-browsers-than-the-ie-firefox-is-an-animal.csv
c504170720075bb247bf857b4a74e2a0006e227874d41a365d4cf742143af02c  UKPConvArg1Strict-CSV/gay-marriage-right-or-wrong_allowing-gay-marriage-is-right.csv
2759c1ad9c0748a1fa8cbbf6166e104b9a731d46c007eec9221746ec78a27fd2  UKPConvArg1Strict-CSV/gay-marriage-right-or-wrong_allowing-gay-marriage-is-wrong.csv
7a3ac8558be74f3f4f085293d545800f866f66b0b8cfdf8702c1d32b70dfe7a8  UKPConvArg1Strict-CSV/human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_no.csv
103403421f41b18f102954f9a8968aa18a6edf759379cccec19e2dcd10af8d71  UKPConvArg1Strict-CSV/human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_yes.csv
924bbb29b79990b196ac2f17c25a8a5ada2c1eb44369052ad006731f272459ea  UKPConvArg1Strict-CSV/if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_no.csv
c8c5ed3510f842aa60d4935f3137293637b2a8c775788ccbe00ac925d625d45d  UKPConvArg1Strict-CSV/if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_yes.csv
fc5d6699740e343606133afd9cb8eb5e44accaf9ddca5502c41809d40592d4d5  UKPConvArg1Strict-CSV/india-has-the-potential-to-lead-the-world-_no-against.csv
5183a1587bb9c688f13da61efe8247e1c0833d459ed59cc79c0e9ceac9bbc4b3  UKPConvArg1Strict-CSV/india-has-the-potential-to-lead-the-world-_yes-for.csv
90ea69a4800eebc6aec6935dccc72d592bae2ea3acf0b8a199cb43552be2948d  UKPConvArg1Strict-CSV/is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_fatherless.csv
129e2e19214db77b98a04feb66a4e85c3d78cc494b0dfb1b3d099c3e37ef0b6a  UKPConvArg1Strict-CSV/is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_lousy-father.csv
b6b30bede4567c84dbc2ec8db0c6acb74f818d2685534e8d09d35f48c3f230fe  UKPConvArg1Strict-CSV/is-porn-wrong-_no-is-is-not.csv
1a827506b88b7f5d7ce1a781cb935d4fe3f019b79b83bd2a778526e10c9ff6f1  UKPConvArg1Strict-CSV/is-porn-wrong-_yes-porn-is-wrong.csv
7ebb532dcaedd836a7a96a65a7cc45bb10e92d49fd7d94a265795ecf68e1927a  UKPConvArg1Strict-CSV/is-the-school-uniform-a-good-or-bad-idea-_bad.csv
db2948b209b9d59e8aa256aa020dcc7bd53581ede762f403e2550d7eb60dad1e  UKPConvArg1Strict-CSV/is-the-school-uniform-a-good-or-bad-idea-_good.csv
4e0dcc10f2e9c360f0786aeb1545440943794c65c290d4f4d144c7ab22420748  UKPConvArg1Strict-CSV/personal-pursuit-or-advancing-the-common-good-_advancing-the-commond-good.csv
3ddb7f9b04425a02eaff86394b02ef3a516317457283bc4ba84cf38bb6048e0a  UKPConvArg1Strict-CSV/personal-pursuit-or-advancing-the-common-good-_personal-pursuit.csv
7f98ca0c5eec48782c1ce6d43aefad41428c82cb3bb0ed2b8cda48c7a035352f  UKPConvArg1Strict-CSV/pro-choice-vs-pro-life_pro-choice.csv
648586dff1eb6e4c22d7eb528cca79219daecc9b99906c8bae59f810bf532585  UKPConvArg1Strict-CSV/pro-choice-vs-pro-life_pro-life.csv
9fa60eee8b161ff400b0b88b01c3e6a1b44bedc4795eea4a75c7089b784e7c16  UKPConvArg1Strict-CSV/should-physical-education-be-mandatory-in-schools-_no-.csv
133e27fb57352eeb1bc71638051536546cabc84b90bff4f7e6d7313da944176c  UKPConvArg1Strict-CSV/should-physical-education-be-mandatory-in-schools-_yes-.csv
2d8b8247570aab28837febfdfdd7324f4e1fac2efe58a77d7fc355c89509642f  UKPConvArg1Strict-CSV/tv-is-better-than-books_books.csv
76677ba0814e95380b1f5b9a459670fd3e71ad1f5cb02ecc7ac094e3f5dfb58e  UKPConvArg1Strict-CSV/tv-is-better-than-books_tv.csv
112defbb0e49db425a7ed3e28de9a5b133c17f739fa9d0b8d08c9ee00facf785  UKPConvArg1Strict-CSV/william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_no-it-is-raffles-.csv
67addb83292e7e2d638edac70d2cc670e0b3d7ec19f57b101c8fd9ff975bab4e  UKPConvArg1Strict-CSV/william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_yes-of-course-.csv
"""

_SHA256: dict[str, str] = {
    "pandalm/testset-v1.json": "cc154f9067c7382d7ea86f8f246511a5e1ac87e1fddd845c5938d789505b07a4",
    "pandalm/gpt-3.5-turbo-testset-v1.json": "4c00aa7b3eeae504050a037422ba6f5b0a2ee041680f47bb77b8a4b549b128e3",
    "pandalm/pandalm-7b-testset-v1.json": "9a40b62a7bb2aa87ca77eb8bfcb51539b5a62f974ce91678d30e834d65ed0a7e",
    "snow2008/rte.standardized.tsv": "3187c5de59b9b9c596d490d25b5f5f108090a35cbdd10e81f21e6d1939d6ba79",
    "snow2008/temp.standardized.tsv": "7f74de9f36a0d3dfdc1f51e6433526abfc788c616d0c2d04a96206780ac74860",
    "snow2008/wsd.standardized.tsv": "77b77c0f63803bcb62d3a15c199e301bacbd4dbe012278600bd34f1e5f8a8ed9",
    # Extracted from datasets.zip (the archive itself is not verified, see the module docstring).
    "vldb17/d_jn-product/answer.csv": "ca69e3f2cba3d6f9c3b3ecc2f8d2a81afcd747d0b91aa5ab18608a5715e26adc",
    "vldb17/d_jn-product/truth.csv": "9a5757c726ef1a32b05f6a675924c483b24d602c61b1a2d087ab3d84f90b3766",
    "vldb17/d_sentiment/answer.csv": "8f4006278ca288a8d73a20cc37348f71b201f1bcb471a9aacd80421d8a34be26",
    "vldb17/d_sentiment/truth.csv": "bac9bebdfdcbc5227cee6f95e27754f1089421e39317df54b9e2680bc78d9976",
    "vldb17/d_Duck Identification/answer.csv": "0d5e423652c079361a4cbc0adbee0945d40f02a9dedcfb6b068e8f2af63b24f0",
    "vldb17/d_Duck Identification/truth.csv": "04c6d8b6cdc298b63c05dc87d28ceebd018d4207e0ced7c1229ca3593a74983a",
    "vldb17/s4_Dog data/answer.csv": "db11159198f59fa2af87450b008f860ca2e9e04e3f15c697ef254af40fb6763a",
    "vldb17/s4_Dog data/truth.csv": "2a641fa31e80526164d956da4228f80d31b303c2691ab1855c76fef72d04b746",
}
_SHA256.update({f"ukp-convarg1/{path}": digest for digest, path in
                (line.split("  ", 1) for line in _UKP_SHA256.strip().splitlines())})

# Failures that mean "offline" or "the remote is gone": reported as one line, never as a traceback. URLError,
# HTTPError, timeouts and refused connections are all OSError; a broken HTTP exchange is an HTTPException.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


def _raw_url(source: str, relative: str) -> str:
    home = SOURCES[source]
    quoted = urllib.parse.quote(f"{home['path']}/{relative}" if relative else home["path"])
    return f"https://github.com/{home['repo']}/raw/{home['commit']}/{quoted}"


@dataclass(frozen=True)
class DatasetSpec:
    """One named set: its files (relative to the data folder), how to load it and where it comes from."""

    name: str
    folder: str
    description: str
    form: str
    licence: str
    citation: str
    files: tuple[str, ...]
    loader: Callable[[Path], pd.DataFrame] = field(repr=False)
    #: For sets published inside an archive: the archive's URL (its members are found by their path suffix).
    archive_url: str | None = None

    @property
    def homepage(self) -> str:
        home = SOURCES[self.folder]
        return f"https://github.com/{home['repo']}/tree/{home['commit']}/{home['path']}"

    def url(self, relative: str) -> str:
        """The download URL of one file (``relative`` to the data folder)."""
        if self.archive_url is not None:
            return self.archive_url
        inside = relative.split("/", 1)[1]
        return _raw_url(self.folder, inside)


_UKP_CITATION = ("Habernal, I. & Gurevych, I. (2016). Which argument is more convincing? Analyzing and predicting "
                 "convincingness of Web arguments using bidirectional LSTM. ACL 2016.")
_PANDALM_CITATION = ("Wang, Y. et al. (2024). PandaLM: An Automatic Evaluation Benchmark for LLM Instruction "
                     "Tuning Optimization. ICLR 2024.")
_SNOW_CITATION = ("Snow, R., O'Connor, B., Jurafsky, D. & Ng, A. (2008). Cheap and Fast - But is it Good? "
                  "Evaluating Non-Expert Annotations for Natural Language Tasks. EMNLP 2008.")
_VLDB_CITATION = ("Zheng, Y., Li, G., Li, Y., Shan, C. & Cheng, R. (2017). Truth Inference in Crowdsourcing: "
                  "Is the Problem Solved? PVLDB 10(5).")
_VLDB_LICENCE = "none stated (research benchmark: use for evaluation only)"


def _ukp_files(subfolder: str) -> tuple[str, ...]:
    return tuple(sorted(p for p in _SHA256 if p.startswith(f"ukp-convarg1/{subfolder}/")))


def _vldb_spec(short: str, folder_name: str, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"vldb17-{short}", folder="vldb17", description=description, form="categorical",
        licence=_VLDB_LICENCE, citation=_VLDB_CITATION,
        files=(f"vldb17/{folder_name}/answer.csv", f"vldb17/{folder_name}/truth.csv"),
        loader=lambda folder, _name=folder_name: vldb.load_vldb17(_name, folder),
        archive_url=_raw_url("vldb17", ""),
    )


def _snow_spec(key: str, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"snow2008-{key}", folder="snow2008", description=description, form="categorical",
        licence="MIT (repository)", citation=_SNOW_CITATION, files=(f"snow2008/{snow.SETS[key][0]}",),
        loader=lambda folder, _key=key: snow.load_snow2008(_key, folder),
    )


REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="ukpconvarg1", folder="ukp-convarg1", form="preference", licence="CC-BY 4.0",
            description="UKPConvArg1 full: 16,927 argument pairs, 84,445 MTurk judgments (A/B/tie) by 3,815 "
                        "workers, with reasons, worker stance and the corpus' MACE gold",
            citation=_UKP_CITATION, files=_ukp_files(ukp.FULL_SUBFOLDER),
            loader=lambda folder: ukp.load_ukpconvarg1(folder, variant="full"),
        ),
        DatasetSpec(
            name="ukpconvarg1-strict", folder="ukp-convarg1", form="preference", licence="CC-BY 4.0",
            description="UKPConvArg1Strict: 11,650 cleaned argument pairs with one gold label each (A/B), "
                        "as one judgment per pair by the pseudo-annotator 'gold'",
            citation=_UKP_CITATION, files=_ukp_files(ukp.STRICT_SUBFOLDER),
            loader=lambda folder: ukp.load_ukpconvarg1(folder, variant="strict"),
        ),
        DatasetSpec(
            name="pandalm", folder="pandalm", form="preference", licence="Apache-2.0",
            description="PandaLM human test set: 999 LLM response pairs x 3 human raters (A/B/tie), plus "
                        "gpt-3.5-turbo and pandalm-7b as AI judges",
            citation=_PANDALM_CITATION,
            files=("pandalm/testset-v1.json", "pandalm/gpt-3.5-turbo-testset-v1.json",
                   "pandalm/pandalm-7b-testset-v1.json"),
            loader=lambda folder: pandalm.load_pandalm(folder),
        ),
        _snow_spec("rte", "Snow 2008 RTE: 800 items, 164 workers, 8,000 binary labels, expert gold"),
        _snow_spec("temp", "Snow 2008 TEMP: 462 items, 76 workers, 4,620 binary labels, expert gold"),
        _snow_spec("wsd", "Snow 2008 WSD: 177 items, 34 workers, 1,770 labels in 3 classes, expert gold"),
        _vldb_spec("product", "d_jn-product",
                   "VLDB17 D_Product: 8,315 product-pair items, 176 workers, 24,945 binary answers, truth"),
        _vldb_spec("sentiment", "d_sentiment",
                   "VLDB17 D_PosSent: 1,000 tweets, 85 workers, 20,000 binary answers, truth"),
        _vldb_spec("duck", "d_Duck Identification",
                   "VLDB17 Duck Identification (Bluebirds): 108 images, 39 workers, 4,212 binary answers, truth"),
        _vldb_spec("dog", "s4_Dog data",
                   "VLDB17 Dog: 807 images, 109 workers, 8,070 answers in 4 classes (which dog breed?), truth"),
    )
}


# -- UKPConvArg2: a multi-attribute table (reasons as binary attributes of pairs) ----------------------------
SOURCES["ukp-convarg2"] = {"repo": "UKPLab/emnlp2016-empirical-convincingness", "commit": "5396e5ae",
                           "path": "data/CSV-format"}
_SHA256.update({f"ukp-convarg2/{path}": digest for digest, path in
                (line.split("  ", 1) for line in ukp2.SHA256_TEXT.strip().splitlines())})
REGISTRY["ukpconvarg2"] = DatasetSpec(
    name="ukpconvarg2", folder="ukp-convarg2", form="attribute", licence="CC BY-NC-SA 4.0 (research use)",
    description="UKPConvArg2: 9,111 UKPConvArg1Strict pairs with the reasons one argument is more convincing, "
                "as binary attributes of the pair (groups o5-o9) plus the preference",
    citation=("Habernal, I. & Gurevych, I. (2016). What makes a convincing argument? Empirical analysis and "
              "detecting attributes of convincingness in Web argumentation. EMNLP 2016."),
    files=tuple(sorted(p for p in _SHA256 if p.startswith("ukp-convarg2/"))),
    loader=lambda folder: ukp2.load_ukpconvarg2(folder),
)


def get_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in REGISTRY:
        raise AccordError(f"unknown dataset {name!r}: use one of {sorted(REGISTRY)}")
    return REGISTRY[key]


# -- public API ---------------------------------------------------------------------------------------------


def list_datasets(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The named sets: ``name``, ``description``, ``form``, ``licence``, ``citation``, ``source`` (URL), whether a
    local copy is ``present``, and ``location``: the folder it is read from, or where it would have to be put (or
    is downloaded to) when it is not (see :func:`locate` for the order)."""
    rows = []
    for s in REGISTRY.values():
        present, folder = where(s.name, data_dir)
        rows.append({"name": s.name, "description": s.description, "form": s.form, "licence": s.licence,
                     "citation": s.citation, "source": s.homepage, "present": present, "location": str(folder)})
    return pd.DataFrame(rows)


def where(name: str, data_dir: str | os.PathLike | None = None,
          cache_dir: str | os.PathLike | None = None) -> tuple[bool, Path]:
    """``(True, folder)`` for the local folder :func:`load` would read ``name`` from; ``(False, folder)`` for the
    folder to put it in by hand when no local copy exists (the named data folder, else the download cache)."""
    spec = get_spec(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    named = _named_dir(data_dir)
    # the folders a set may sit in: <root>/<source folder> of each root, and the named folder itself (a user who
    # names the set's own folder, ``data_dir=".../pandalm"``, was told to nest it in a second ``pandalm/``)
    candidates = [root / spec.folder for root in _local_roots(data_dir)]
    if named is not None:
        candidates.append(named)
    for folder in candidates:
        if _has_files(spec, folder):
            return True, folder
    # the folder that holds the set's files themselves, where they sit one level deeper in their source folder
    # (``.../vldb17/s4_Dog data``, ``.../ukp-convarg1/UKPConvArg1-full-XML``): the loaders read it, and the message
    # asked for the files under ``.../s4_Dog data/vldb17/``. By its published name only: every VLDB set has the same
    # two files, so a folder of another name would be taken for each of them
    if named is not None and _has_files(spec, named, skip=2) and _inner_folder(spec) == named.name:
        return True, named
    if _has_files(spec, cache / spec.folder):
        return True, cache / spec.folder
    return False, _where_to_put(data_dir, cache) / spec.folder


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Load a named set as a validated judgments table (see :func:`list_datasets` for the names).

    Parameters
    ----------
    name
        ``"ukpconvarg1"``, ``"ukpconvarg1-strict"``, ``"pandalm"``, ``"snow2008-rte"``/``-temp``/``-wsd``,
        ``"vldb17-product"``/``-sentiment``/``-duck``/``-dog``.
    data_dir
        The folder holding the sources (``<data_dir>/pandalm/...``), or the set's own folder
        (``<data_dir>/testset-v1.json``, ...). Default: ``$ACCORD_DATA_DIR``, else the repository's
        ``../shared/datasets`` when it exists.
    download
        When no local copy (nor the cache) has the files, download them into the cache, verified by sha256.
    cache_dir
        The download cache (default ``$ACCORD_CACHE_DIR``, else ``~/.cache/accord``).

    Raises
    ------
    AccordError
        Unknown name; files missing and ``download=False``; offline or the download failed (the line says where
        to put the files by hand); a downloaded file whose checksum does not match.
    """
    spec = get_spec(name)
    folder = locate(spec.name, data_dir, download=download, cache_dir=cache_dir)
    table = spec.loader(folder)
    table.attrs["source"] = spec.name
    return table


def describe(name: str, data_dir: str | os.PathLike | None = None, **load_kwargs: Any) -> dict[str, Any]:
    """Counts of a named set: items (pairs), judgments, annotators, the label distribution and gold coverage; for
    per-attribute ratings the labels and scales per attribute (one count over every attribute added a preference's
    -1/1 to the reasons' 0/1)."""
    spec = get_spec(name)
    table = load(spec.name, data_dir, **load_kwargs)
    info = table_info(table)
    gold = gold_labels(table)
    scale = info.get("scale")
    item = "pair_id"
    if info["form"] == "attribute":
        item = "response_id" if info["item"] == "response" else "pair_id"
        counts = table.groupby("attribute", sort=False)["label"].value_counts().sort_index()
        labels = {a: {_plain(k): int(v) for k, v in counts[a].items()} for a in info["attributes"]}
        scale = {a: tuple(info["scales"][a]) for a in info["attributes"]}
    else:
        labels = {_plain(k): int(v) for k, v in table["label"].value_counts().sort_index().items()}
    return {
        "name": spec.name,
        "form": info["form"],
        "scale": scale,
        "n_items": int(table[item].nunique()),
        "n_judgments": int(len(table)),
        "n_annotators": int(table["annotator"].nunique()),
        "labels": labels,
        "has_gold": bool(len(gold) > 0),
        "n_items_with_gold": int(len(gold)),
    }


def locate(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """The local folder (``<root>/<source folder>``) holding every file of ``name``; downloading it if needed."""
    spec = get_spec(name)
    present, folder = where(spec.name, data_dir, cache_dir)
    if present:
        return folder
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = _where_to_put(data_dir, cache)
    if not download:
        raise AccordError(
            f"dataset '{spec.name}' is not available locally and download=False: put {_what(spec)} under "
            f"{target / spec.folder}/ ({_where_from(spec)}) or set {ENV_DATA_DIR}"
        )
    fetch(spec.name, cache, _hint_dir=target)
    return cache / spec.folder


def fetch(name: str, cache_dir: str | os.PathLike | None = None, *, _hint_dir: Path | None = None) -> Path:
    """Download the files of ``name`` into ``cache_dir`` (verified by sha256) and return its source folder there.

    Files already in the cache are kept: they were verified when they were put there.
    """
    spec = get_spec(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    missing = [rel for rel in spec.files if not (cache / rel).is_file()]
    if not missing:
        return cache / spec.folder
    hint = _hint_dir or cache
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".accord-download-", dir=cache) as scratch:
        if spec.archive_url is not None:
            archive = Path(scratch) / "archive.zip"
            _download_or_fail(spec, spec.archive_url, archive, hint)
            for rel in missing:
                extracted = Path(scratch) / "files" / rel
                _extract_member(archive, rel, extracted, spec)
                _verify_and_place(extracted, cache / rel, rel, spec.archive_url)
        else:
            for rel in missing:
                url = spec.url(rel)
                downloaded = Path(scratch) / "files" / rel
                _download_or_fail(spec, url, downloaded, hint)
                _verify_and_place(downloaded, cache / rel, rel, url)
    return cache / spec.folder


# -- helpers ------------------------------------------------------------------------------------------------


def _download(url: str, destination: Path, timeout: float = 60.0) -> None:
    """Fetch ``url`` into ``destination`` (tests replace this function; they never reach the network)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"accord/{accord.__version__}"})
    destination.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def _download_or_fail(spec: DatasetSpec, url: str, destination: Path, hint: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        _download(url, destination)
    except _NETWORK_ERRORS as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AccordError(
            f"dataset '{spec.name}' is not available offline and downloading {url} failed "
            f"({type(exc).__name__}: {str(reason).splitlines()[0] if str(reason) else type(exc).__name__}): "
            f"put {_what(spec)} under {hint / spec.folder}/ ({_where_from(spec)}) or set {ENV_DATA_DIR} "
            f"to a folder that holds {spec.folder}/"
        ) from None


def _extract_member(archive: Path, relative: str, destination: Path, spec: DatasetSpec) -> None:
    """Copy out the archive member whose path ends with ``relative`` minus its source folder.

    ``vldb17/d_sentiment/truth.csv`` is found as ``<anything>/d_sentiment/truth.csv`` in the archive.
    """
    suffix = relative.split("/", 1)[1]
    try:
        with zipfile.ZipFile(archive) as zipped:
            # Match by path suffix: the archive's top folder is not part of the layout, and macOS "__MACOSX/"
            # shadow entries are skipped. Only matched members are read, so no path from the archive is ever
            # used to write a file (no zip-slip).
            names = [n for n in zipped.namelist()
                     if (n == suffix or n.endswith("/" + suffix)) and not n.startswith("__MACOSX")]
            if not names:
                raise AccordError(f"file {spec.archive_url}: the archive has no member '{suffix}'")
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(min(names, key=len)) as member, open(destination, "wb") as out:
                shutil.copyfileobj(member, out)
    except zipfile.BadZipFile as exc:
        raise AccordError(f"file {spec.archive_url}: the downloaded archive is not a valid zip ({exc})") from None


def _verify_and_place(downloaded: Path, target: Path, relative: str, url: str) -> None:
    expected = _SHA256[relative]
    actual = sha256_of(downloaded)
    if actual != expected:
        raise AccordError(
            f"file {url}: sha256 {actual} does not match the recorded {expected} for {relative}; the remote copy "
            f"changed or the download was corrupted (nothing was kept)"
        )
    # Place atomically: a crash leaves no half file that later loads would trust.
    with atomic_path(target) as tmp:
        shutil.copyfile(downloaded, tmp)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """The folders read before the cache: the one the user named (``data_dir``, else ``$ACCORD_DATA_DIR``) and
    nothing else, or, when none is named, the repository's shared copy."""
    named = _named_dir(data_dir)
    if named is not None:
        return [named]
    shared = repository_datasets_dir()
    return [shared] if shared.is_dir() else []


def _named_dir(data_dir: str | os.PathLike | None) -> Path | None:
    env = os.environ.get(ENV_DATA_DIR)
    setting = "data_dir" if data_dir is not None else f"${ENV_DATA_DIR}"
    named = Path(data_dir).expanduser() if data_dir is not None else Path(env).expanduser() if env else None
    # a file was taken as a folder: `accord datasets list` showed paths under it, and loads looked inside it
    if named is not None and named.exists() and not named.is_dir():
        problem = f"{named}: is a file, not a folder (name the folder that holds the datasets)"
        if data_dir is None:
            raise AccordError(f"{setting} {problem}")
        raise SettingError("data_dir", lambda name: f"{name} {problem}")  # --data-dir on the command line
    return named


def _has_files(spec: DatasetSpec, folder: Path, skip: int = 1) -> bool:
    """Whether ``folder`` holds every file of the set as its source folder (``spec.files`` less their first part),
    or with ``skip=2`` as the folder the files are in, below their source folder (never true for a set whose files
    sit in the source folder itself)."""
    parts = [rel.split("/", skip) for rel in spec.files]
    return all(len(p) > skip for p in parts) and all((folder / p[skip]).is_file() for p in parts)


def _inner_folder(spec: DatasetSpec) -> str | None:
    """The one folder below the source folder that holds every file of the set (``s4_Dog data``), if there is one."""
    inner = {rel.split("/")[1] for rel in spec.files if rel.count("/") == 2}
    return inner.pop() if len(inner) == 1 and all(rel.count("/") == 2 for rel in spec.files) else None


def _where_to_put(data_dir: str | os.PathLike | None, cache: Path) -> Path:
    """The folder the error message tells the user to fill: the one they named, else the env var's, else the cache."""
    named = _named_dir(data_dir)
    return named if named is not None else cache


def _what(spec: DatasetSpec) -> str:
    """The files of a set as the error message lists them (a folder and a count when there are many)."""
    inside = [rel.split("/", 1)[1] for rel in spec.files]
    if len(inside) <= 4:
        return ", ".join(inside)
    folders = sorted({item.rsplit("/", 1)[0] for item in inside})
    return ", ".join(f"{f}/ ({sum(item.startswith(f + '/') for item in inside)} files)" for f in folders)


def _where_from(spec: DatasetSpec) -> str:
    """Where the files come from, as the error message says it: the archive to download and unpack, or the page."""
    if spec.archive_url is None:
        return f"from {spec.homepage}"
    archive = spec.archive_url.rsplit("/", 1)[-1]
    return f"unpacked from {archive} ({spec.archive_url}); the archive holds one folder per set"


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (for a JSON-friendly describe())."""
    with contextlib.suppress(AttributeError):
        return value.item()
    return value
