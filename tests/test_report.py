"""The rater report on a slice of UKPConvArg1: HTML, PNG figures and CSV tables are there and say the right things."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from accord.aggregate.report import write_report
from accord.datasets import validate
from accord.datasets.loaders.ukp import load_ukpconvarg1
from accord.models.context import ContextPreference
from accord.models.rater_types import RaterTypes

from conftest import shared_data_or_skip

torch.set_num_threads(1)
FILES = ("evolution-vs-creation_evolution.xml", "evolution-vs-creation_creation.xml")


@pytest.fixture(scope="module")
def ukp_slice() -> pd.DataFrame:
    folder = shared_data_or_skip("ukp-convarg1", "UKPConvArg1-full-XML")
    table = pd.concat([load_ukpconvarg1(folder / name) for name in FILES], ignore_index=True)
    return validate(table[table["annotator_stance"].notna()].reset_index(drop=True))


def test_report_writes_html_figures_and_csvs(ukp_slice, tmp_path):
    context = ContextPreference(
        group="annotator_stance", reference_group="none", topic="item_debate", covariates=None, inference="map",
        max_steps=400,
    ).fit(ukp_slice)
    types = RaterTypes(n_types=2, max_steps=400).fit(ukp_slice)
    out = tmp_path / "report"
    (out).mkdir()
    (out / "stale.txt").write_text("an older report")  # replaced as a whole, atomically
    assert write_report(out, ukp_slice, context, types, top_n=10) == out

    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert figures >= {"reliability_forest.png", "confusion_matrices.png", "group_effects.png", "rater_types.png",
                       "genuine_disagreement.png", "disagreement_split.png"}
    assert all((out / "figures" / name).stat().st_size > 5_000 for name in figures)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 6  # self-contained: every section's figure is embedded
    for heading in ("Annotator reliability", "Confusion matrices", "Flagged raters", "Group effects", "Rater types",
                    "genuine disagreement"):
        assert heading in page

    annotators = pd.read_csv(out / "annotators.csv", index_col=0)
    assert len(annotators) == ukp_slice["annotator"].nunique()
    assert {"reliability", "reliability_lower", "reliability_upper", "spam", "adversarial_share"} <= set(
        annotators.columns)
    assert annotators["reliability"].between(0, 1).all()
    effects = pd.read_csv(out / "group_effects.csv")
    assert set(effects["group"]) == {"opposite", "same"} and (effects["reference"] == "none").all()
    assert {"preference_scale", "reliability", "tie"} <= set(effects["effect"])
    assert (effects["lower"] <= effects["upper"]).all()
    pairs = pd.read_csv(out / "genuine_disagreement.csv", index_col=0)
    assert len(pairs) == ukp_slice["pair_id"].nunique()
    assert {"p_a_none", "p_a_same", "p_a_opposite", "disagreement", "noise_share"} <= set(pairs.columns)
    assert pairs["between"].is_monotonic_decreasing
    confusion = pd.read_csv(out / "confusion.csv")
    assert set(confusion["rank"]) == {"worst", "best"} and set(confusion["true"]) == {"A", "B", "tie"}
    types_table = pd.read_csv(out / "types.csv")
    assert len(types_table) == 2 and abs(types_table["share"].sum() - 1) < 1e-6
    assert (out / "flagged.csv").exists() and (out / "summary.csv").exists()
