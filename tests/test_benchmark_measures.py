"""What the benchmark scripts' measures compute, each against an independent computation: the pairs an agreement is
taken over."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.test_benchmark_stats import load_script

LABELS = ("A", "B", "tie")


class _Stop(Exception):
    """Raised where the script would fit its first model: everything it measures before is printed by then."""


def pandalm_table(humans: list[tuple[str, str, str]], judge: list[str | None]) -> pd.DataFrame:
    """A PandaLM-like table: three human annotators and one AI judge, who left the pairs of ``None`` unlabelled."""
    rows = []
    for i, (votes, verdict) in enumerate(zip(humans, judge)):
        rows += [{"pair_id": f"p{i}", "annotator": f"human{k}", "label": label, "annotator_is_ai": False,
                  "annotator_kind": "human"} for k, label in enumerate(votes)]
        if verdict is not None:
            rows.append({"pair_id": f"p{i}", "annotator": "judge", "label": verdict, "annotator_is_ai": True,
                         "annotator_kind": "ai"})
    return pd.DataFrame(rows)


def expected_agreement(humans: list[tuple[str, str, str]], judge: list[str | None]) -> float:
    """By hand: over the pairs the judge labelled whose humans have a label given more often than any other."""
    hits = []
    for votes, verdict in zip(humans, judge):
        (top, count), *rest = Counter(votes).most_common()
        if verdict is None or (rest and rest[0][1] == count):
            continue
        hits.append(verdict == top)
    return float(np.mean(hits)) if hits else float("nan")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # kappa of two raters of one label: NaN
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
# a three-way split among the humans (no majority) and a pair the judge left unlabelled
@example(data=None)
def test_pandalm_agreement_with_the_human_majority_is_over_the_pairs_both_label(monkeypatch, capsys, data):
    """'agreement of <judge> with the human majority' counted a pair the AI judge left unlabelled (25 of
    gpt-3.5-turbo's 999) as a disagreement, and gave a three-way human split to 'A' (the first label of
    ``mode``): the share is over the pairs the judge labelled that have a human majority, as the kappa table beside
    it leaves unlabelled pairs out."""
    script = load_script("context_real")
    if data is None:
        humans = [("A", "A", "B"), ("B", "B", "B"), ("A", "B", "tie"), ("tie", "tie", "A"), ("B", "B", "A")]
        judge = ["A", None, "A", "B", "B"]
    else:
        n = data.draw(st.integers(1, 12))
        humans = data.draw(st.lists(st.tuples(*[st.sampled_from(LABELS)] * 3), min_size=n, max_size=n))
        judge = data.draw(st.lists(st.sampled_from([*LABELS, None]), min_size=n, max_size=n)
                          .filter(lambda v: any(x is not None for x in v)))
    table = pandalm_table(humans, judge)
    monkeypatch.setattr(script, "load_pandalm", lambda path: table)

    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(script, "ContextPreference", stop)
    capsys.readouterr()
    with pytest.raises(_Stop):
        script.pandalm(2)
    found = re.search(r"agreement of judge with the human majority: (\S+)", capsys.readouterr().out)
    assert found is not None
    expected = expected_agreement(humans, judge)
    if np.isnan(expected):
        assert found.group(1) == "nan"
    else:
        assert float(found.group(1)) == pytest.approx(expected, abs=5e-4)
