"""UKPConvArg2 (Habernal & Gurevych, EMNLP 2016): *why* one web argument is more convincing than another.

9,111 argument pairs of UKPConvArg1 (its Strict subset), each tagged with the set of reasons why the more convincing
argument wins: 17 reason labels in 5 groups (the gold after the authors' MACE cleaning of 5 crowd assignments per
reason unit; glosses of each label are in the paper's Figure 1):

========  ============================================================================================
``o5``    the weaker argument attacks the opponent, is abusive or lacks respect (``o5_1`` .. ``o5_3``)
``o6``    the weaker argument is off-topic, unclear or nonsense (``o6_1`` .. ``o6_3``)
``o7``    the weaker argument lacks support, is weak, or is not an argument (``o7_1`` .. ``o7_4``)
``o8``    the stronger argument gives more details, facts or reasoning (``o8_1``, ``o8_4``, ``o8_5``)
``o9``    the stronger argument is balanced, credible, well written or funny (``o9_1`` .. ``o9_4``)
========  ============================================================================================

:func:`load_ukpconvarg2` returns a multi-attribute table of pair items (:mod:`accord.datasets.attributes`), one
rating per pair and attribute by the pseudo-annotator ``"gold"``: the reasons as binary properties of the pair
(``1`` = the reason was given, on the scale ``0..1``), one attribute per group (``attributes="group"``: 1 when any
reason of the group was given) or per reason (``attributes="reason"``), and the preference itself as the attribute
``convincing`` on ``-1..1`` (``-1``: A is more convincing).

The published CSV (``data/CSV-format/<debate side>.xml.csv``; tab-separated: pair id ``<id1>_<id2>``, the reason
labels, the more convincing text, the less convincing text, ``<br/>`` for line breaks) always puts the more
convincing argument first, while the pair id keeps the order the workers saw. Every argument appears in several
pairs, so its text is the one text common to all of them; the loader recovers each argument's id that way and, with
``sides="original"`` (default), shows the pair as the workers saw it (A = the first id; on the shared copy this
reproduces every UKPConvArg1Strict label). ``sides="convincing_first"`` keeps the CSV's order (A always wins).

Columns: ``pair_id``, ``annotator`` (``"gold"``), ``attribute``, ``label``, ``scale_min``/``scale_max``, ``prompt``
(the debate title), ``response_a``/``response_b``, ``response_a_id``/``response_b_id`` (argument ids),
``item_debate`` (the debate side, spelled as the UKPConvArg1Strict file stem so that topic splits carry over) and
``item_topic`` (the debate).
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from accord.datasets.attributes import validate_attributes
from accord.datasets.errors import AccordError, ValidationError
from accord.datasets.loaders.generic import find_source_folder, read_table, require_cells
from accord.datasets.loaders.ukp import DEBATE_TITLES

FOLDER = "ukp-convarg2"
SUFFIX = ".xml.csv"
#: The 17 reason labels of the corpus, by group.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "o5": ("o5_1", "o5_2", "o5_3"),
    "o6": ("o6_1", "o6_2", "o6_3"),
    "o7": ("o7_1", "o7_2", "o7_3", "o7_4"),
    "o8": ("o8_1", "o8_4", "o8_5"),
    "o9": ("o9_1", "o9_2", "o9_3", "o9_4"),
}
REASONS: tuple[str, ...] = tuple(r for group in REASON_GROUPS.values() for r in group)
PREFERENCE_ATTRIBUTE = "convincing"

# Debate sides whose UKPConvArg2 file stem differs from the UKPConvArg1Strict one (the rest are equal).
_STRICT_STEMS: dict[str, str] = {
    "firefox-vs-internet-explorer_there-s-more-browsers-than-the-ie-firefox-is-an-animal-and-the-opera-isn-t-about"
    "-the-internet": "firefox-vs-internet-explorer_there-s-more-browsers-than-the-ie-firefox-is-an-animal",
    "which-type-of-endeavor-is-better-a-personal-pursuit-or-advancing-the-common-good-_advancing-the-common-good":
        "personal-pursuit-or-advancing-the-common-good-_advancing-the-commond-good",
    "which-type-of-endeavor-is-better-a-personal-pursuit-or-advancing-the-common-good-_personal-pursuit":
        "personal-pursuit-or-advancing-the-common-good-_personal-pursuit",
}

#: sha256 of the published CSV files (sha256sum output; long lines are data).
SHA256_TEXT = """
2dbb9d6d10c53ff336935ee950afc19da51999953529c541d153e61f3bf65c8d  ban-plastic-water-bottles_no-bad-for-the-economy.xml.csv
3a529d0950fa5c9a9b04321f75505a40bfb0a67a9e7242539ecf2521b70cc964  ban-plastic-water-bottles_yes-emergencies-only.xml.csv
5ddbe36c360468cebed0f58ae2fc76e6798f5b7ba2d8c2742e82f7757a28ce4f  christianity-or-atheism-_atheism.xml.csv
359f7aafd6a6f76f7d33d9b3d087fb7fdd944026c4722957f50dba7c96a6b691  christianity-or-atheism-_christianity.xml.csv
95c1ab9b9e4d4abe369231722481be19dc4c3c7f577d77fb2831dfbb142e9318  evolution-vs-creation_creation.xml.csv
344c566602732193a5891228d967f35f434becc58bb18504df2d858939933461  evolution-vs-creation_evolution.xml.csv
bd4dd936d3a5d1f6bef1b7382f3050a77fb456744dfda32f9eede119e3ba7962  firefox-vs-internet-explorer_it-has-a-cute-logo-oh-and-extensions-err-add-ons.xml.csv
2a7112608bd726e8d774115aad0e079346728ca1f89455c7f44347c5fac45f8c  firefox-vs-internet-explorer_there-s-more-browsers-than-the-ie-firefox-is-an-animal-and-the-opera-isn-t-about-the-internet.xml.csv
4ecdcfeb0163309ca1e234017f6093ed8e111e15fc8be1518fc0e45cef0af7a3  gay-marriage-right-or-wrong_allowing-gay-marriage-is-right.xml.csv
7a561e49f611bf6bd1f0ca4ebf362fb580d760fec50e9d76b7ce5eb8a7bf67ba  gay-marriage-right-or-wrong_allowing-gay-marriage-is-wrong.xml.csv
c3bb2ebde864ee71622e1d4953600d82732f532a530e0d0c9f62ce3e9b88c0ee  human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_no.xml.csv
a31bd811762f47892fdcc2f63ebae4aabac3fc65591c1543cc79d5ab829f4ca9  human-growth-and-development-should-parents-use-spanking-as-an-option-to-discipline-_yes.xml.csv
0f71ecfcd239fb394229b6787834d4d62e1fc0cb8e7d497a60b790f094b32916  if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_no.xml.csv
69f35586071dde02dcd439c4482dd6b23250a79545707855959f0b7d22fae325  if-your-spouse-committed-murder-and-he-or-she-confided-in-you-would-you-turn-them-in-_yes.xml.csv
4c94bc19ee24b56dcc956c8b37323ef38dd381427ff7163b1dc993569eaa9b7d  india-has-the-potential-to-lead-the-world-_no-against.xml.csv
78b71af536698a4314489bf614448169d175de327ca552a95aecf663fc4144da  india-has-the-potential-to-lead-the-world-_yes-for.xml.csv
0cd174764f7403c165c3cb705b71bca1f7ed629f1be1a1226ab509bc6ce712af  is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_fatherless.xml.csv
6a2b9b866af9e64c54aa813d134e4ac1636d3f7349c3fe61d17354fc8fafb204  is-it-better-to-have-a-lousy-father-or-to-be-fatherless-_lousy-father.xml.csv
c286256d1048e1bfc154a452d6d32077f4c60f795cbd594d8eb08e2638e509db  is-porn-wrong-_no-is-is-not.xml.csv
f9c3d949962f22ab95e063780cd77352bc6953d1be32e3571fbb27893f36315e  is-porn-wrong-_yes-porn-is-wrong.xml.csv
0d3de7c3e9a7e0d349863c6c8844ff1a4581a979e3c214d27da89cf6a04e57d8  is-the-school-uniform-a-good-or-bad-idea-_bad.xml.csv
1172f0e1a8415d3f69e0fe04414e20cc1cf49435958aebc3d4c4a681e6f615cd  is-the-school-uniform-a-good-or-bad-idea-_good.xml.csv
cdfd5fb934b723f0f44020c174923004db59b3c6a8c477bb43489e7e26fa7594  pro-choice-vs-pro-life_pro-choice.xml.csv
35d12041b10af1c0d9b0852f99aca7685614ef7d3ea6b6d9c7fc313638c1c395  pro-choice-vs-pro-life_pro-life.xml.csv
3e88a295c2da09add96f46cad12de5c9e44b4a88a62fd877674d6595713d0c7a  should-physical-education-be-mandatory-in-schools-_no-.xml.csv
3b7495b9f5aed2912ec6dbf65f2e3188d95df3040d61b841d9947a4ebc590962  should-physical-education-be-mandatory-in-schools-_yes-.xml.csv
46f03eef26c8a71744602ae3b686699d2afbf4d4d8ed3cc9bdb91b6785250902  tv-is-better-than-books_books.xml.csv
62df0e79be60824261f251cc7c9caa930e475031bec7a66d0b4e8077100b5365  tv-is-better-than-books_tv.xml.csv
51945efb3f2c616a62fe13a938d9d355db7e9dde2d829c742143d1944cde7e77  which-type-of-endeavor-is-better-a-personal-pursuit-or-advancing-the-common-good-_advancing-the-common-good.xml.csv
36a14d41b7c5e07be9bd14ee06adb86abfc365987d982fa6ad0a571a64823d0d  which-type-of-endeavor-is-better-a-personal-pursuit-or-advancing-the-common-good-_personal-pursuit.xml.csv
eb8ffdaf6604ffbd6d5ffbefbe088418d15cc96cfd8850b659d99583ac15fd85  william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_no-it-is-raffles-.xml.csv
89ddc784932c2670f92b7ed3673d5de6d39b3f0b66bff6d3a0ac9daeaba992db  william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_yes-of-course-.xml.csv
"""


def load_ukpconvarg2(
    path: str | os.PathLike | None = None,
    *,
    attributes: Literal["group", "reason"] = "group",
    sides: Literal["original", "convincing_first"] = "original",
    preference: bool = True,
) -> pd.DataFrame:
    """Load UKPConvArg2 as a validated multi-attribute table of pairs (see the module docstring).

    Parameters
    ----------
    path
        The folder of ``*.xml.csv`` files, or one such file. ``None`` looks for ``ukp-convarg2/`` in
        ``$ACCORD_DATA_DIR``, the repository's ``../shared/datasets`` and the download cache.
    attributes
        ``"group"``: one binary attribute per reason group ``o5`` .. ``o9``; ``"reason"``: one per reason label.
    sides
        ``"original"``: A and B as the workers saw them (argument ids recovered from the texts); pairs whose ids
        cannot be recovered keep the CSV's order, with a warning. ``"convincing_first"``: A is always the more
        convincing argument.
    preference
        Include the preference as the attribute ``convincing`` (``-1..1``; ``-1``: A more convincing). Leaving it
        out needs ``sides="convincing_first"``: on the original sides it alone says which argument the reasons
        are about.
    """
    if attributes not in ("group", "reason"):
        raise AccordError(f"attributes must be 'group' or 'reason', got {attributes!r}")
    if sides not in ("original", "convincing_first"):
        raise AccordError(f"sides must be 'original' or 'convincing_first', got {sides!r}")
    if not preference and sides == "original":
        # the reasons are about the more convincing argument, which the preference alone records on these sides
        raise AccordError("preference=False with sides='original' drops which argument is more convincing, which "
                          "every reason is about: pass sides='convincing_first' (A is then always the more "
                          "convincing) or keep preference=True")
    files = _files(path)
    pairs = pd.concat([_read_csv(f) for f in files], ignore_index=True)
    source = str(files[0].parent if len(files) > 1 else files[0])
    repeated = pairs["pair_id"].duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise ValidationError("pair id appears twice", source=pairs["_file"].iloc[row], column="pair_id",
                              row=int(pairs["_row"].iloc[row]), value=pairs["pair_id"].iloc[row])

    given = _reason_indicators(pairs)  # [pairs, 17] booleans
    first_id, second_id = _split_ids(pairs, source)
    more_id, less_id = _winner_ids(pairs, first_id, second_id)
    resolved = more_id.notna().to_numpy()
    if sides == "original" and not resolved.all():
        warnings.warn(f"{source}: the argument ids of {int((~resolved).sum())} pair(s) could not be recovered from "
                      f"the texts; those pairs keep the more convincing argument as A", stacklevel=2)
    a_wins = ~resolved | (more_id == first_id).to_numpy() if sides == "original" else np.ones(len(pairs), bool)
    response_a = np.where(a_wins, pairs["more"], pairs["less"])
    response_b = np.where(a_wins, pairs["less"], pairs["more"])
    id_more = more_id.where(more_id.notna(), pairs["pair_id"] + "/more")
    id_less = less_id.where(less_id.notna(), pairs["pair_id"] + "/less")
    base = pd.DataFrame({
        "pair_id": pairs["pair_id"],
        "annotator": "gold",
        "prompt": pairs["prompt"],
        "response_a": response_a,
        "response_b": response_b,
        "response_a_id": np.where(a_wins, id_more, id_less),
        "response_b_id": np.where(a_wins, id_less, id_more),
        "item_debate": pairs["item_debate"],
        "item_topic": pairs["item_topic"],
    })

    if attributes == "group":
        columns = {g: given[:, [REASONS.index(r) for r in members]].any(axis=1)
                   for g, members in REASON_GROUPS.items()}
    else:
        columns = {r: given[:, k] for k, r in enumerate(REASONS)}
    parts = []
    if preference:
        parts.append(base.assign(attribute=PREFERENCE_ATTRIBUTE, label=np.where(a_wins, -1, 1), scale_min=-1,
                                 scale_max=1))
    for name, values in columns.items():
        parts.append(base.assign(attribute=name, label=values.astype(np.int64), scale_min=0, scale_max=1))
    table = pd.concat(parts, ignore_index=True)
    # one pair's ratings together, in attribute order
    order = np.argsort(np.tile(np.arange(len(base)), len(parts)), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    return validate_attributes(table, item="pair", source=source)


def _files(path: str | os.PathLike | None) -> list[Path]:
    base = find_source_folder(FOLDER, "ukpconvarg2") if path is None else Path(path)
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise AccordError(f"file {base}: no such file or folder (expected the UKPConvArg2 CSV folder)")
    files = sorted(base.glob(f"*{SUFFIX}"))
    if not files:
        raise AccordError(f"file {base}: no *{SUFFIX} files here (expected UKPConvArg2's data/CSV-format/)")
    return files


def _read_csv(file: Path) -> pd.DataFrame:
    # QUOTE_NONE: argument texts contain quote characters that are not CSV quoting; the files have no header.
    raw = read_table(file, fmt="tsv", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False, header=None)
    if raw.shape[1] != 4:
        raise ValidationError(f"expected 4 tab-separated fields (pair id, reasons, more convincing, less "
                              f"convincing), found {raw.shape[1]}", source=str(file))
    raw.columns = ["pair_id", "reasons", "more", "less"]
    require_cells(raw, ("pair_id", "more", "less"), str(file))  # a pair may have no reasons, never no text
    stem = file.name[: -len(SUFFIX)] if file.name.endswith(SUFFIX) else file.stem
    debate = _STRICT_STEMS.get(stem, stem)
    topic = debate.split("_", 1)[0]
    title = DEBATE_TITLES.get(topic) or topic.replace("-", " ").strip().capitalize()
    return pd.DataFrame({
        "pair_id": raw["pair_id"],
        "reasons": raw["reasons"],
        "more": raw["more"].str.replace("<br/>", "\n", regex=False),
        "less": raw["less"].str.replace("<br/>", "\n", regex=False),
        "prompt": title,
        "item_debate": debate,
        "item_topic": topic,
        "_file": str(file),
        "_row": np.arange(len(raw)),
    })


def _split_ids(pairs: pd.DataFrame, source: str) -> tuple[pd.Series, pd.Series]:
    ids = pairs["pair_id"].str.split("_", n=1, expand=True).reindex(columns=[0, 1])
    bad = ids[1].isna() | ids[0].eq("") | ids[1].eq("")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError("pair id must be '<first argument id>_<second argument id>'",
                              source=pairs["_file"].iloc[row], column="pair_id", row=int(pairs["_row"].iloc[row]),
                              value=pairs["pair_id"].iloc[row])
    return ids[0], ids[1]


def _winner_ids(pairs: pd.DataFrame, first: pd.Series, second: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each pair's (more convincing, less convincing) argument ids, NA where the texts do not tell.

    An argument's text is the one text that every pair containing the argument shows (as either side).
    """
    candidates = pd.concat([
        pd.DataFrame({"arg": ids, "text": pairs[side]})
        for ids in (first, second) for side in ("more", "less")
    ], ignore_index=True)
    n_pairs = pd.concat([first, second]).value_counts()
    seen = candidates.groupby(["arg", "text"], sort=False).size().reset_index(name="n")
    common = seen[seen["n"].to_numpy() >= n_pairs.reindex(seen["arg"]).to_numpy()]
    unique = common[~common["arg"].duplicated(keep=False)].set_index("arg")["text"]
    text_first = first.map(unique)
    text_second = second.map(unique)
    first_more = (text_first == pairs["more"]) & (text_second == pairs["less"])
    second_more = (text_second == pairs["more"]) & (text_first == pairs["less"])
    known = first_more ^ second_more  # identical texts on both sides cannot tell
    more = first.where(first_more, second).where(known)
    less = second.where(first_more, first).where(known)
    return more, less


def _reason_indicators(pairs: pd.DataFrame) -> np.ndarray:
    labels = pairs["reasons"].str.split(",")
    exploded = labels.explode().str.strip()
    exploded = exploded[exploded.ne("") & exploded.notna()]
    codes = pd.Index(REASONS).get_indexer(exploded)
    if (codes < 0).any():
        position = int(np.flatnonzero(codes < 0)[0])
        row = int(exploded.index[position])
        raise ValidationError(f"unknown reason label (expected one of {list(REASONS)})",
                              source=pairs["_file"].iloc[row], column="reasons",
                              row=int(pairs["_row"].iloc[row]), value=exploded.iloc[position])
    given = np.zeros((len(pairs), len(REASONS)), dtype=bool)
    given[exploded.index.to_numpy(), codes] = True
    return given
