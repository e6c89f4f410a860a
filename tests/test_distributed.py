"""Fits across processes: the sharded Parquet reader, and torchrun with two gloo processes giving the single-process
soft labels and annotator table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from accord.datasets import AccordError, ValidationError
from accord.datasets.stream import read_judgment_shard
from conftest import shared_data_or_skip

REPO_ROOT = Path(__file__).resolve().parents[1]


def correlated_table(n_items: int = 400, n_workers: int = 30, per_item: int = 5, seed: int = 0) -> pd.DataFrame:
    """Preference judgments, with ties, whose pairs differ in difficulty (a fifth are hard for everyone): errors
    are correlated within a pair."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n_items, p=[0.45, 0.45, 0.1])
    skill = rng.uniform(0.6, 0.95, size=n_workers)
    hard = rng.random(n_items) < 0.2
    workers = np.stack([rng.choice(n_workers, size=per_item, replace=False) for _ in range(n_items)])
    easiness = rng.uniform(0.0, 1.0, size=n_items)  # pairs differ in difficulty: raters' errors go together
    p_right = np.where(hard[:, None], 0.3, skill[workers] * easiness[:, None] + (1 - easiness[:, None]) / 3)
    right = rng.random((n_items, per_item)) < p_right
    wrong = (truth[:, None] + rng.integers(1, 3, size=(n_items, per_item))) % 3
    labels = np.where(right, truth[:, None], wrong)
    order = rng.permutation(n_items * per_item)  # pairs interleaved in the file, as in a real log
    return pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(n_items)], per_item)[order],
                         "annotator": np.array([f"w{w}" for w in workers.ravel()])[order],
                         "label": np.array(["A", "B", "tie"])[labels.ravel()][order]})


def write_parquet(table: pd.DataFrame, path: Path, row_group_size: int = 300) -> Path:
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path, row_group_size=row_group_size)
    return path


@settings(max_examples=15, deadline=None)
@given(world_size=st.integers(1, 4), n_items=st.integers(1, 60), seed=st.integers(0, 1000))
def test_shards_partition_the_pairs(tmp_path_factory, world_size, n_items, seed):
    """Every judgment lands on exactly one rank, all judgments of a pair on the same one, and the first rows of
    pairs and annotators are those of the whole file."""
    table = correlated_table(n_items=n_items, n_workers=8, per_item=3, seed=seed)
    path = write_parquet(table, tmp_path_factory.mktemp("shard") / "j.parquet", row_group_size=7)
    shards = [read_judgment_shard(path, rank, world_size, batch_rows=5) for rank in range(world_size)]
    rows = np.sort(np.concatenate([s.rows for s in shards]))
    assert (rows == np.arange(len(table))).all()
    owners = {}
    for rank, shard in enumerate(shards):
        pairs = shard.item_ids[shard.items]
        assert (pairs == table.pair_id.to_numpy()[shard.rows]).all()
        assert (shard.annotator_ids[shard.workers] == table.annotator.to_numpy()[shard.rows]).all()
        for pair in set(pairs):
            assert owners.setdefault(pair, rank) == rank
        first = table.reset_index().groupby("pair_id")["index"].min()
        assert (shard.item_first_row == first.loc[shard.item_ids].to_numpy()).all()
        mine = table.iloc[shard.rows].reset_index().groupby("annotator")["index"].min()
        assert (shard.annotator_first_row == mine.loc[shard.annotator_ids].to_numpy()).all()
    assert sorted(owners) == sorted(set(table.pair_id))


def test_shard_reader_names_the_bad_row(tmp_path):
    table = correlated_table(n_items=50)
    bad = table.copy()
    bad.loc[17, "label"] = "C"
    with pytest.raises(ValidationError, match=r"column 'label', row 17.*'C'"):
        read_judgment_shard(write_parquet(bad, tmp_path / "bad.parquet", 10))
    twice = pd.concat([table, table.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValidationError, match=rf"row {len(table)}.*more than once"):
        read_judgment_shard(write_parquet(twice, tmp_path / "twice.parquet", 10))
    missing = table.astype({"annotator": object})
    missing.loc[5, "annotator"] = None
    with pytest.raises(ValidationError, match="column 'annotator', row 5"):
        read_judgment_shard(write_parquet(missing, tmp_path / "missing.parquet", 10))
    # a blank id is missing, as validate() says for the single-process fit (the shards kept it as a pair)
    blank = table.astype({"pair_id": str})
    blank.loc[23, "pair_id"] = "  "
    with pytest.raises(ValidationError, match="column 'pair_id', row 23: missing id"):
        read_judgment_shard(write_parquet(blank, tmp_path / "blank.parquet", 10))
    with pytest.raises(AccordError, match="rank 2 of 2"):
        read_judgment_shard(write_parquet(table, tmp_path / "ok.parquet", 10), 2, 2)


def test_a_streamed_input_error_names_the_flag_that_mends_it(tmp_path, capsys):
    """The single-process reader's errors name the columns there are and the flag that mends them; the streamed
    reader's said only "missing required column", "outside the declared set" or "more than once"."""
    from accord.cli import main

    table = correlated_table(n_items=20)
    common = ["aggregate", "--distributed", "1", "--method", "dawid-skene", "--output", str(tmp_path / "o.csv")]
    renamed = write_parquet(table.rename(columns={"pair_id": "item", "annotator": "rater"}), tmp_path / "r.parquet")
    assert main([*common, "--input", str(renamed)]) == 2
    err = capsys.readouterr().err
    assert "column 'pair_id': missing required column (the table has: 'item', 'rater', 'label'" in err
    assert "--columns NAME=pair_id" in err
    other = write_parquet(table.assign(label=table["label"].where(table.index != 7, "left")), tmp_path / "l.parquet")
    assert main([*common, "--input", str(other)]) == 2
    assert "row 7: label outside the declared set {'A', 'B', 'tie'} (for other labels: --form categorical" in \
        capsys.readouterr().err
    twice = write_parquet(pd.concat([table, table.iloc[[3]]], ignore_index=True), tmp_path / "t.parquet")
    assert main([*common, "--input", str(twice)]) == 2
    assert "--duplicates first, last or keep" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("names, mapping", [
    (("task", "worker"), None), (("q", "w"), {"q": "task", "w": "worker"}),
    (("q", "w"), {"q": "pair_id", "w": "annotator"}), (("q", "annotator"), {"q": "task"}), (("task", "annotator"), None), (("q", "w"), {"q": "pair_id", "w": "worker"})])
@pytest.mark.parametrize("labels", [["A", "B", "tie"], [0, 1, 2]])
def test_the_streamed_reader_names_columns_as_the_single_process_reader(tmp_path, names, mapping, labels):
    """The column mapping is applied before the names are read, as read_judgments applies it: a target of crowd-kit's
    (``q=task``) was not followed ("missing required column"), ``q=pair_id`` made accord's names count as crowd-kit's
    (labels 0/1/2 fitted as classes where the single-process reader refuses them as preferences), and a file mixing
    the two conventions had its accord column read without a word."""
    from accord.datasets import read_judgments

    table = correlated_table(n_items=12).assign(label=lambda t: t["label"].map(dict(zip(["A", "B", "tie"], labels))))
    path = write_parquet(table.set_axis([*names, "label"], axis=1), tmp_path / "j.parquet")
    try:
        single = read_judgments(path, columns=mapping)
    except ValidationError as error:
        with pytest.raises(ValidationError) as caught:
            read_judgment_shard(path, columns=mapping)
        assert (caught.value.problem.split(" (")[0], caught.value.row) == (error.problem.split(" (")[0], error.row)
        return
    shard = read_judgment_shard(path, columns=mapping)
    assert (shard.item_ids[shard.items] == single["pair_id"].to_numpy()).all()
    assert (shard.annotator_ids[shard.workers] == single["annotator"].to_numpy()).all()
    assert sorted(shard.label_values, key=str) == sorted(set(single["label"]), key=str)


def duck_table() -> pd.DataFrame:
    """VLDB'17 Duck (binary categorical, integer ids), where the tempering's rho comes out above 0."""
    answers = shared_data_or_skip("vldb17", "d_Duck Identification", "answer.csv")
    return pd.read_csv(answers).set_axis(["pair_id", "annotator", "label"], axis=1)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "accord"]
ACCORD_LAUNCHING = [sys.executable, "-m", "accord", "aggregate", "--distributed", "2"]


@pytest.mark.parametrize("launch, method, inference, data, form", [
    # the defaults: empirical prior, rho chosen from the votes
    (ACCORD_LAUNCHING, "dawid-skene", None, duck_table, "categorical"),
    (TORCHRUN + ["aggregate"], "hierarchical-dawid-skene", "vb", correlated_table, None),
])
def test_two_gloo_processes_give_the_single_process_fit(tmp_path, launch, method, inference, data, form):
    """``torchrun --nproc-per-node 2 -m accord aggregate`` and ``accord aggregate --distributed 2`` (two gloo processes
    on CPU, each streaming its own pairs) write the soft labels and annotator table of the single-process fit,
    within 1e-6."""
    from accord.aggregate import make_method
    from accord.datasets import validate

    path = write_parquet(data(), tmp_path / "judgments.parquet")
    single = make_method(method, **({"inference": inference} if inference else {}))
    single.fit(validate(pd.read_parquet(path), form=form))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*launch, "--input", str(path), "--method", method, "--output", str(tmp_path / "soft.parquet"),
               "--annotators", str(tmp_path / "annotators.csv"), "--quiet"]
    command += ["--inference", inference] if inference else []
    command += ["--form", form] if form else []
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks: 2" in done.stdout
    soft = pd.read_parquet(tmp_path / "soft.parquet")
    expected = single.soft_labels_.to_frame().reset_index()
    assert list(soft.columns) == list(expected.columns)
    assert (soft.pair_id.to_numpy() == expected.pair_id.to_numpy()).all()
    numbers = expected.select_dtypes("number").columns
    assert np.allclose(soft[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6)
    annotators = pd.read_csv(tmp_path / "annotators.csv")
    expected = single.annotators_.reset_index()
    assert (annotators.annotator.to_numpy() == expected.annotator.to_numpy()).all()
    numbers = expected.select_dtypes("number").columns
    assert np.allclose(annotators[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6,
                       equal_nan=True)
    if method == "dawid-skene":
        assert single.item_correlation_ > 0  # the sharded choice of rho was exercised


def test_two_processes_draw_the_calibration_pairs_a_single_process_draws(tmp_path, monkeypatch):
    """Above ``max_judgments`` (200,000; lowered here, in both fits) the calibration is chosen on a random share of
    the pairs, which each process drew by its own pairs' codes: another share than the single-process fit's, so
    another rho and other soft labels. The draw follows the pair ids, the same in every process."""
    from functools import partial

    from accord.aggregate import make_method
    from accord.datasets import validate
    from accord.models import _vb, dawid_skene

    # binary pairs of varying difficulty (the raters of a pair err together, so rho comes out above 0)
    rng = np.random.default_rng(0)
    n_items, n_raters = 200, 10
    truth = rng.integers(0, 2, n_items)
    easiness = rng.normal(1.5, 1.5, n_items)[:, None] * rng.uniform(0.8, 1.5, n_raters)[None, :]
    labels = np.where(rng.random((n_items, n_raters)) < 1 / (1 + np.exp(-easiness)), truth[:, None], 1 - truth[:, None])
    table = pd.DataFrame({"pair_id": np.repeat([f"p{i}" for i in range(n_items)], n_raters),
                          "annotator": np.tile([f"w{j}" for j in range(n_raters)], n_items),
                          "label": np.array(["A", "B"])[labels.ravel()]})
    path = write_parquet(table.iloc[rng.permutation(len(table))], tmp_path / "judgments.parquet")  # 2,000
    monkeypatch.setattr(dawid_skene, "select_item_calibration",
                        partial(_vb.select_item_calibration, max_judgments=600))
    single = make_method("dawid-skene").fit(validate(pd.read_parquet(path)))
    assert single.item_correlation_ > 0  # the draw chose rho
    launcher = tmp_path / "launch.py"  # the accord command with the same lowered threshold on every rank
    launcher.write_text("import functools, sys\nfrom accord.models import _vb, dawid_skene\n"
                        "dawid_skene.select_item_calibration = functools.partial(_vb.select_item_calibration, "
                        "max_judgments=600)\nfrom accord.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*TORCHRUN[:-2], str(launcher), "aggregate", "--input", str(path), "--method", "dawid-skene",
               "--output", str(tmp_path / "soft.parquet"), "--quiet"]
    done = _run_or_stop(command, env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks: 2" in done.stdout
    soft = pd.read_parquet(tmp_path / "soft.parquet")
    expected = single.soft_labels_.to_frame().reset_index()
    assert (soft.pair_id.to_numpy() == expected.pair_id.to_numpy()).all()
    numbers = expected.select_dtypes("number").columns
    assert np.allclose(soft[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6)


def test_fit_across_processes_refuses_what_it_cannot_do(tmp_path, capsys):
    """One clear line and exit status 2, before any process is started."""
    from accord.cli import main

    path = write_parquet(correlated_table(n_items=20), tmp_path / "j.parquet")
    cases = [(["--method", "majority"], "supports dawid-skene"),
             (["--method", "dawid-skene", "--inference", "nuts"], "closed-form VB"),
             (["--method", "dawid-skene", "--gold", str(path)], "--gold"),
             (["--method", "dawid-skene", "--distributed", "0"], "at least 1"),
             # flags the streaming fit does not read were silently ignored
             (["--method", "dawid-skene", "--debias", "length"], "--debias"),
             (["--method", "dawid-skene", "--drop-ties"], "--drop-ties"),
             (["--method", "dawid-skene", "--sep", ";"], "--sep"),
             (["--method", "dawid-skene", "--pairs-output", str(tmp_path / "p.parquet")], "--pairs-output"),
             # graded judgments: --scale was ignored and every label refused as 'outside the declared set A/B/tie'
             (["--method", "dawid-skene", "--scale", "3"], "--scale 3: a fit across processes reads preference"),
             # --duplicates was ignored (the shards refused the repeats all the same), --form graded refused
             # without the flag's name
             (["--method", "dawid-skene", "--duplicates", "keep"], "--duplicates keep: a fit across processes"),
             (["--method", "dawid-skene", "--form", "graded"], "--form graded: a fit across processes")]
    for extra, message in cases:
        argv = ["aggregate", "--input", str(path), "--output", str(tmp_path / "o.parquet"), "--distributed", "2",
                *extra]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_cleaned_output_of_judgments_with_texts_is_refused_not_soft_labels(tmp_path, capsys, suffix):
    """Judgments with response texts: one process writes a cleaned preference dataset to .parquet/.jsonl; the fit
    across processes wrote soft labels to the same name (a reader of cleaned datasets then misread them). It is one
    line naming --output, and a .csv output still gets the soft labels."""
    from accord.cli import main

    table = correlated_table(n_items=20)
    table = table.assign(prompt="p", response_a="a " + table["pair_id"], response_b="b " + table["pair_id"])
    path = write_parquet(table, tmp_path / "j.parquet")
    common = ["aggregate", "--input", str(path), "--method", "dawid-skene", "--quiet", "--distributed", "1"]
    assert main([*common, "--output", str(tmp_path / f"o{suffix}")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--output {tmp_path / f'o{suffix}'}" in err and "cleaned" in err, err
    assert not (tmp_path / f"o{suffix}").exists()
    assert main([*common, "--output", str(tmp_path / "o.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "o.csv")) == 20


def _validate_and_stream_refuse_alike(table: pd.DataFrame, path: Path, batch_rows: int) -> tuple[str, str]:
    """The messages with which ``validate`` refuses ``table`` and the streamed reader refuses its file ``path``: the
    same but for the file the streamed one names first."""
    from accord.datasets import validate

    with pytest.raises(ValidationError) as single:
        validate(table)
    with pytest.raises(ValidationError) as streamed:
        read_judgment_shard(path, batch_rows=batch_rows)
    assert str(streamed.value) == f"file {path}, " + str(single.value)
    return str(single.value), str(streamed.value)


def _with_gold(table: pd.DataFrame, categorical: bool = False) -> pd.DataFrame:
    """``table`` with a gold column: each pair's first label, given on its last row only for every third pair (the
    first gold of a pair in the file is its gold), none for every fourth; integer labels (``categorical``) beside a
    float gold column with gaps, as pandas writes a column of whole numbers with a missing cell."""
    if categorical:
        table = table.assign(label=table["label"].map({"A": 0, "B": 1, "tie": 2}))
    number = table["pair_id"].str[1:].astype(int)
    gold = table.groupby("pair_id")["label"].transform("first").astype(float if categorical else object)
    late = (number % 3 == 0) & table.duplicated("pair_id", keep="last")
    return table.assign(gold=gold.where(~late & (number % 4 != 0), None if not categorical else np.nan))


def _gold_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("against gold")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize("method, categorical", [("dawid-skene", False), ("hierarchical-dawid-skene", True)])
def test_a_fit_across_processes_scores_the_gold_column_as_one_process(tmp_path, capsys, method, categorical):
    """One process prints its scores against the table's gold column (accuracy, NLL, Brier, ECE); the fit across
    processes printed only a note that it was not scored. Two processes now print the same line: process 0 scores
    the soft labels it gathers against each pair's gold label, gathered beside them."""
    from accord.cli import main

    table = _with_gold(correlated_table(n_items=120, n_workers=12, per_item=4), categorical)
    assert (table["gold"].astype(str) == "tie").any() or categorical  # the line's count of gold ties is read
    path = write_parquet(table, tmp_path / "j.parquet", row_group_size=70)
    common = ["--input", str(path), "--method", method, "--inference", "vb", "--quiet"]
    common += ["--form", "categorical"] if categorical else []
    assert main(["aggregate", *common, "--output", str(tmp_path / "a.csv")]) == 0
    single = _gold_line(capsys.readouterr().out)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = _run_or_stop([*ACCORD_LAUNCHING, *common, "--output", str(tmp_path / "b.csv")], env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks: 2" in done.stdout and "not scored" not in done.stdout
    assert _gold_line(done.stdout) == single  # the soft labels agree within 1e-6; the line prints 3 decimals
    n_gold = table.loc[table["gold"].notna(), "pair_id"].nunique()
    assert f"against gold ({n_gold} items" in single
    # one streaming process scores it too
    assert main(["aggregate", *common, "--output", str(tmp_path / "c.csv"), "--distributed", "1"]) == 0
    assert _gold_line(capsys.readouterr().out) == single


@pytest.mark.parametrize("gold, at", [("C", 5), ("b", 17), (" A", 33)])
def test_a_bad_gold_cell_gets_the_single_process_message(tmp_path, gold, at):
    """A gold cell that is no preference label is refused by the streamed reader as validate refuses it, naming the
    file's row (it was read without a word, the column never looked at)."""
    table = _with_gold(correlated_table(n_items=10, n_workers=8, per_item=4))
    table.loc[at, "gold"] = gold
    path = write_parquet(table, tmp_path / "j.parquet", row_group_size=7)
    single, streamed = _validate_and_stream_refuse_alike(table, path, batch_rows=5)
    assert f"column 'gold', row {at}: " in streamed


def test_one_streaming_process_gives_the_pandas_fit(tmp_path):
    """``--distributed 1`` (the input streamed in this process) writes what the ordinary command writes."""
    from accord.cli import main

    path = write_parquet(correlated_table(n_items=150), tmp_path / "j.parquet", row_group_size=50)
    common = ["aggregate", "--input", str(path), "--method", "dawid-skene", "--quiet"]
    assert main([*common, "--output", str(tmp_path / "a.csv"), "--annotators", str(tmp_path / "a_ann.csv")]) == 0
    assert main([*common, "--output", str(tmp_path / "b.csv"), "--annotators", str(tmp_path / "b_ann.csv"),
                 "--distributed", "1"]) == 0
    for name in ("", "_ann"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / f"a{name}.csv"), pd.read_csv(tmp_path / f"b{name}.csv"),
                                      check_exact=False, atol=1e-9, rtol=0)


@pytest.mark.parametrize("method", ["dawid-skene", "hierarchical-dawid-skene"])
def test_a_process_with_no_pairs_does_not_hang_the_fit(tmp_path, method):
    """More processes than pairs: the process whose shard is empty skipped the calibration's all-reduces (an early
    return for no judgments), so the other one waited in its first for ever. Every pair here hashes to rank 0.
    The empty process also warned that "no pair has two judgments" (of its own none) for the hierarchical model."""
    from accord.aggregate import make_method
    from accord.datasets import validate
    from accord.datasets.stream import shard_of

    table = correlated_table(n_items=40, n_workers=8, per_item=4)
    table = table[shard_of(table.pair_id.to_numpy(), 2) == 0]
    path = write_parquet(table, tmp_path / "judgments.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*ACCORD_LAUNCHING, "--input", str(path), "--method", method, "--inference", "vb", "--output",
               str(tmp_path / "soft.parquet"), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no pair has two judgments" not in done.stderr
    single = make_method(method, inference="vb").fit(validate(table))
    expected = single.soft_labels_.to_frame().reset_index()
    soft = pd.read_parquet(tmp_path / "soft.parquet")
    numbers = expected.select_dtypes("number").columns
    assert np.allclose(soft[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6)


def _run_or_stop(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose timeout stops torchrun's worker processes too (a hung fit leaves none behind)."""
    import signal

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        pytest.fail(f"{' '.join(command[:6])} ... did not end within {timeout} s")
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


def test_a_process_whose_pairs_are_all_judged_once_fits_with_the_others(tmp_path):
    """The hierarchical fit fits its population only where some pair has two judgments, and each process asked its
    own pairs: the one whose pairs were all judged once kept the start while the other fitted it, their iterations
    parted and the fit hung in an all_reduce. It now gives the single-process fit."""
    from accord.aggregate import make_method
    from accord.datasets import validate
    from accord.datasets.stream import shard_of

    table = correlated_table(n_items=60, n_workers=8, per_item=3, seed=2)
    table = table[~((shard_of(table.pair_id.to_numpy(), 2) == 1) & table.duplicated("pair_id"))]
    path = write_parquet(table, tmp_path / "judgments.parquet")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*ACCORD_LAUNCHING, "--input", str(path), "--method", "hierarchical-dawid-skene", "--inference", "vb",
               "--output", str(tmp_path / "soft.parquet"), "--quiet"]
    done = _run_or_stop(command, env, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    single = make_method("hierarchical-dawid-skene", inference="vb").fit(validate(table))
    expected = single.soft_labels_.to_frame().reset_index()
    soft = pd.read_parquet(tmp_path / "soft.parquet")
    assert (soft.pair_id.to_numpy() == expected.pair_id.to_numpy()).all()
    numbers = expected.select_dtypes("number").columns
    assert np.allclose(soft[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=0, atol=1e-6)


def test_an_input_the_processes_refuse_is_one_error_line_and_status_2(tmp_path):
    """``--distributed 2`` on a file every process refuses (CSV, not Parquet): each process printed its
    ``accord: error:`` line, torchrun added its traceback of the failed child (about 40 lines) and exited 1."""
    path = tmp_path / "judgments.csv"
    correlated_table(n_items=20).to_csv(path, index=False)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*ACCORD_LAUNCHING, "--input", str(path), "--method", "dawid-skene", "--output",
               str(tmp_path / "soft.parquet")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0]], done.stderr[-3000:]
    assert done.stderr.startswith(f"accord: error: file {path}: not readable as Parquet")
    assert not (tmp_path / "soft.parquet").exists()


def test_the_annotator_table_is_built_only_when_written(tmp_path, monkeypatch):
    """Rank 0 built the annotator table (the raters' posterior draws, ``num_samples x annotators x classes^2``
    floats) even without ``--annotators``: its peak memory was the one-process fit's plus the draws (the README's
    1.40 against 0.69 GB at 1M judgments)."""
    from accord.cli import main
    from accord.models.dawid_skene import DawidSkene

    built = []
    table = DawidSkene._annotator_table
    monkeypatch.setattr(DawidSkene, "_annotator_table", lambda self: built.append(1) or table(self))
    path = write_parquet(correlated_table(n_items=60), tmp_path / "j.parquet")
    common = ["aggregate", "--input", str(path), "--method", "dawid-skene", "--distributed", "1", "--quiet"]
    assert main([*common, "--output", str(tmp_path / "a.csv")]) == 0
    assert built == []
    assert main([*common, "--output", str(tmp_path / "b.csv"), "--annotators", str(tmp_path / "b_ann.csv")]) == 0
    assert built == [1] and len(pd.read_csv(tmp_path / "b_ann.csv")) == 30


def _streamed_fit(path: Path, method: str):
    """The fit of ``--distributed 1`` (the input streamed in this process), in Python."""
    from accord.aggregate import make_method
    from accord.models.distributed import encode_shard, fit_sharded

    encoded, counts = encode_shard(read_judgment_shard(path, batch_rows=3))
    return fit_sharded(make_method(method, inference="vb"), encoded, counts)


@settings(max_examples=4, deadline=None)
@given(n_items=st.integers(1, 12), n_workers=st.integers(1, 3), seed=st.integers(0, 1000),
       row_group=st.integers(1, 9), method=st.sampled_from(["dawid-skene", "hierarchical-dawid-skene"]))
def test_a_streamed_fit_is_the_single_process_fit_whatever_the_table(tmp_path_factory, n_items, n_workers, seed,
                                                                      row_group, method):
    """Small tables (one annotator, one row, only ties, pairs across row groups): the streamed fit gives the soft
    labels of the single-process one. With one annotator in the file it fitted the confusion prior, which the
    single-process fit leaves fixed there (no population to fit it to): soft labels of 1.0 against 0.76."""
    from accord.aggregate import make_method
    from accord.datasets import validate

    rng = np.random.default_rng(seed)
    rows = [(f"p{i}", f"w{w}") for i in range(n_items) for w in range(n_workers) if w == 0 or rng.random() < 0.7]
    table = pd.DataFrame(rows, columns=["pair_id", "annotator"])
    table["label"] = rng.choice(["A", "B", "tie"], size=len(table), p=rng.dirichlet(np.ones(3)))
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    path = write_parquet(table, tmp_path_factory.mktemp("small") / "j.parquet", row_group_size=row_group)
    streamed = _streamed_fit(path, method).soft_labels_.probs
    single = make_method(method, inference="vb").fit(validate(table)).soft_labels_.probs
    assert list(streamed.columns) == list(single.columns)
    assert np.allclose(streamed.loc[single.index].to_numpy(), single.to_numpy(), rtol=0, atol=1e-6)


def test_partial_fit_of_a_streamed_fit_chooses_the_calibration_again_as_after_a_pandas_fit(tmp_path):
    """A streamed fit records no count of the judgments its calibration was chosen on, and partial_fit read its
    fallback from the grown table: half as many judgments again kept the first calibration (rho 0.116 where a cold
    fit chooses 0.030), soft labels 0.11 from the cold fit's, where after the pandas fit they are within 1e-3."""
    from accord.datasets import validate
    from accord.models import DawidSkene

    table = correlated_table(n_items=600, n_workers=30, per_item=5, seed=1)
    first, rest = table.iloc[: 2000], table.iloc[2000:].reset_index(drop=True)
    model = _streamed_fit(write_parquet(first, tmp_path / "j.parquet"), "dawid-skene")
    cold = DawidSkene().fit(validate(table))
    model.partial_fit(rest)
    assert model.item_correlation_ == pytest.approx(cold.item_correlation_, abs=1e-3)
    gap = np.abs(model.soft_labels_.probs.loc[cold.soft_labels_.probs.index].to_numpy()
                 - cold.soft_labels_.probs.to_numpy()).max()
    assert gap < 1e-3


def test_a_streamed_fit_of_pairs_judged_once_keeps_the_fixed_prior_and_warns(tmp_path):
    """No pair with two judgments (eight raters): the single-process Dawid-Skene keeps the confusion prior fixed and
    warns; the streamed fit fitted the prior (to counts of nothing) and integrated its concentration into the raters'
    draws, an annotator table 0.24 from the single-process one (reliability_lower), without a word."""
    from accord.aggregate import make_method
    from accord.datasets import validate

    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(40)], "annotator": [f"w{i % 8}" for i in range(40)],
                          "label": np.random.default_rng(0).choice(["A", "B", "tie"], size=40)})
    with pytest.warns(UserWarning, match="no pair has two judgments"):
        single = make_method("dawid-skene").fit(validate(table))
    with pytest.warns(UserWarning, match="no pair has two judgments"):
        model = _streamed_fit(write_parquet(table, tmp_path / "j.parquet"), "dawid-skene")
    assert model._prior_fitted is False and model.prior_correct_ == single.prior_correct_
    numbers = single.annotators_.select_dtypes("number").columns
    assert np.allclose(model.annotators_[numbers].to_numpy(float), single.annotators_[numbers].to_numpy(float),
                       rtol=0, atol=1e-6)


def test_a_streamed_fit_of_one_annotator_keeps_the_fixed_prior(tmp_path):
    """One annotator: the single-process Dawid-Skene leaves the confusion prior fixed; the streamed fit fitted it
    (``prior_correct_`` far from the fixed 4.0, soft labels near 1 instead of about 0.76)."""
    from accord.aggregate import make_method
    from accord.datasets import validate

    table = pd.DataFrame({"pair_id": ["p1", "p2", "p3", "p4"], "annotator": "solo", "label": ["A", "A", "B", "tie"]})
    model = _streamed_fit(write_parquet(table, tmp_path / "j.parquet"), "dawid-skene")
    single = make_method("dawid-skene").fit(validate(table))
    assert model.prior_correct_ == single.prior_correct_ and model._prior_fitted is False
    assert np.allclose(model.soft_labels_.probs.to_numpy(), single.soft_labels_.probs.to_numpy(), rtol=0, atol=1e-6)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 8), min_size=1, max_size=3), data=st.data(),
       problem=st.sampled_from(["label", "missing", "repeat"]))
def test_an_error_in_a_folder_of_files_names_the_file_and_its_row(tmp_path_factory, sizes, data, problem):
    """A folder of Parquet files: the error named the folder and the row counted over all of its files (row 12 for
    the third row of the second file)."""
    n = sum(sizes)
    assume(problem != "repeat" or n > 1)  # a repeat needs an earlier row
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "annotator": "w0", "label": "A"})
    bad = data.draw(st.integers(1 if problem == "repeat" else 0, n - 1), label="bad row")
    if problem == "label":
        table.loc[bad, "label"] = "C"
    elif problem == "missing":
        table.loc[bad, "label"] = None
    else:
        table.loc[bad, "pair_id"] = table.loc[data.draw(st.integers(0, bad - 1), label="repeated row"), "pair_id"]
    folder = tmp_path_factory.mktemp("folder")
    starts = np.cumsum([0, *sizes])
    for number, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        write_parquet(table.iloc[start:stop], folder / f"part-{number}.parquet", row_group_size=3)
    file = int(np.searchsorted(starts, bad, side="right")) - 1
    with pytest.raises(ValidationError) as raised:
        read_judgment_shard(folder, batch_rows=2)
    assert str(raised.value).startswith(f"file {folder / f'part-{file}.parquet'}, column ")
    assert f", row {bad - starts[file]}: " in str(raised.value)


def test_a_folder_with_a_file_arrow_cannot_read_is_one_clear_error(tmp_path):
    """The folder's first file is read for the schema; a later damaged file was Arrow's traceback (ArrowInvalid), and
    an empty folder "missing required column (the table has: )". (A file whose ids do not cast to the first file's
    type is refused before the scan: test_a_folder_whose_files_differ_in_columns_or_id_kinds_is_refused_by_file.)"""
    table = correlated_table(n_items=10)
    folder = tmp_path / "damaged"
    folder.mkdir()
    write_parquet(table, folder / "part-0.parquet")
    (folder / "part-1.parquet").write_bytes(b"not parquet")
    with pytest.raises(AccordError, match=f"file {folder}: not readable as Parquet"):
        read_judgment_shard(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AccordError, match="a folder without Parquet files"):
        read_judgment_shard(tmp_path / "empty")


@pytest.mark.parametrize("flag, name", [("--output", "part-0.parquet"), ("--output", "soft.parquet"),
                                        ("--annotators", "sub/annotators.csv")])
def test_an_output_in_the_input_folder_is_refused(tmp_path, capsys, flag, name):
    """Every file of an --input folder is read as judgments: --output over one of them destroyed it, and a new file
    there made the next read of the folder fail ("column 'annotator', row 0: missing id")."""
    from accord.cli import main

    folder = tmp_path / "judgments"
    folder.mkdir()
    write_parquet(correlated_table(n_items=20), folder / "part-0.parquet")
    before = (folder / "part-0.parquet").read_bytes()
    outputs = {"--output": str(tmp_path / "soft.csv"), "--annotators": str(tmp_path / "annotators.csv"),
               flag: str(folder / name)}
    argv = ["aggregate", "--input", str(folder), "--method", "dawid-skene", "--distributed", "1", "--quiet"]
    assert main([*argv, *[part for pair in outputs.items() for part in pair]]) == 2
    assert f"{flag} {folder / name}: is in the --input folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert (folder / "part-0.parquet").read_bytes() == before


def test_a_column_mapping_from_a_column_the_file_lacks_is_refused_as_in_one_process(tmp_path):
    """``--columns item=pair_id`` on a file with pair_id and no item: the single-process reader names the mapping's
    mistake; the streamed one passed over the mapping and read the file's pair_id."""
    from accord.datasets.loaders.generic import read_judgments

    table = correlated_table(n_items=10)
    path = write_parquet(table, tmp_path / "j.parquet")
    for mapping, message in (({"item": "pair_id"}, "column 'item': the column mapping names a column the file does "
                                                   "not have"),
                             ({"annotator": "pair_id"}, "two columns would get the same name")):
        with pytest.raises(ValidationError, match=message):
            read_judgments(path, columns=mapping)
        with pytest.raises(ValidationError, match=message):
            read_judgment_shard(path, columns=mapping)


@settings(max_examples=10, deadline=None)
@given(label=st.sampled_from(["a", "b", "Tie", "B ", " A", "TIE"]), at=st.integers(0, 39))
def test_a_respelt_preference_label_gets_the_single_process_message(tmp_path_factory, label, at):
    """'b' for 'B': the streamed reader suggested --form categorical (which would make 'b' a class beside 'B');
    validate says to write 'B'. Both now say the same, naming the file's row."""
    table = correlated_table(n_items=10, n_workers=8, per_item=4)
    table.loc[at, "label"] = label
    path = write_parquet(table, tmp_path_factory.mktemp("respelt") / "j.parquet", row_group_size=7)
    single, streamed = _validate_and_stream_refuse_alike(table, path, batch_rows=5)
    assert f"row {at}: " in streamed and "--form categorical" not in streamed


@pytest.mark.parametrize("first, later, problem", [
    ("text", "no annotator", "column 'annotator': missing required column"),
    ("text", "numbers", "column 'pair_id': ids mix texts and numbers"),
    ("numbers", "text", "column 'pair_id': ids mix texts and numbers"),
    ("numbers", "true/false", "column 'pair_id': ids mix true/false and numbers"),
])
def test_a_folder_whose_files_differ_in_columns_or_id_kinds_is_refused_by_file(tmp_path, first, later, problem):
    """Arrow reads a folder in its first file's schema: a later file without a column was "column 'annotator', row 0:
    missing id", and one whose ids are numbers where the first file's are texts (or the reverse, when every text
    parses as a number) was cast without a word, the number 7 and the text '7' one id. The single-process reader
    refuses ids that mix kinds; the streamed one now refuses the file, naming it and the column."""
    from accord.datasets.schema import check_ids

    table = correlated_table(n_items=12)
    numbers = table["pair_id"].str[1:].astype(int)
    kinds = {"text": table.assign(pair_id=numbers.astype(str)), "numbers": table.assign(pair_id=numbers),
             "true/false": table.assign(pair_id=numbers % 2 == 0), "no annotator": table.drop(columns="annotator")}
    write_parquet(kinds[first].iloc[:30], tmp_path / "part-0.parquet")
    write_parquet(kinds[later].iloc[30:], tmp_path / "part-1.parquet")
    with pytest.raises(ValidationError, match=f"^file {tmp_path / 'part-1.parquet'}, {problem}"):
        read_judgment_shard(tmp_path, batch_rows=7)
    if later != "no annotator":  # the single-process rule on the two files' ids as one column says the same
        both = pd.concat([kinds[first]["pair_id"].iloc[:30], kinds[later]["pair_id"].iloc[30:]]).astype(object)
        with pytest.raises(ValidationError, match=problem.removeprefix("column 'pair_id': ")):
            check_ids(both.reset_index(drop=True), "pair_id", None)


@pytest.mark.parametrize("first, later, problem", [
    ("text", "numbers", "column 'label': mixed label forms (strings and numbers in one column)"),
    ("numbers", "text", "column 'label': mixed label forms (strings and numbers in one column)"),
    ("text", "empty", "column 'label', row 0: missing label"),
    ("id empty", "empty", "column 'task', row 0: missing id"),
])
def test_a_folder_whose_files_differ_in_label_kinds_is_refused_by_file(tmp_path, first, later, problem):
    """A folder whose first file has text labels and a later one numbers: Arrow cast the numbers to texts without a
    word (the classes '1', '2', 'x', 'y' fitted), and the reverse was Arrow's "Failed to parse string" naming the
    folder, where the single-process rule refuses labels mixing strings and numbers. A later file whose label (or
    id) column holds nothing but empty cells (type null) is its missing label or id, as read_judgments says."""
    from accord.datasets import validate

    table = correlated_table(n_items=12).rename(columns={"pair_id": "task", "annotator": "worker"})
    codes = table["label"].map({"A": 1, "B": 2, "tie": 3})
    kinds = {"text": table.assign(label=table["label"].map({"A": "x", "B": "y", "tie": "z"})),
             "numbers": table.assign(label=codes), "empty": table.assign(label=None),
             "id empty": table.assign(label=codes)}
    if first == "id empty":
        kinds["empty"] = table.assign(label=codes, task=None)
    parts = [kinds[first].iloc[:30], kinds[later].iloc[30:]]
    for number, part in enumerate(parts):
        write_parquet(part, tmp_path / f"part-{number}.parquet")
    with pytest.raises(ValidationError, match=re.escape(f"file {tmp_path / 'part-1.parquet'}, {problem}")):
        read_judgment_shard(tmp_path, form="categorical", batch_rows=7)
    with pytest.raises(ValidationError, match=re.escape(problem.split(": ")[-1])):  # the single-process rule
        validate(pd.concat(parts, ignore_index=True).astype({"label": object}), form="categorical")


@pytest.mark.parametrize("column, later, row", [
    ("pair_id", [1.0, 2.0, 3.5, 4.0], 2),  # integer ids in the first file, a fractional one later
    ("annotator", [5, 2**40, 6, 7], 1),  # a later id too large for the first file's int32
    ("label", [1.0, 0.5, 1.0, 0.0], 1),  # integer labels, a fractional one later
])
def test_a_later_file_whose_numbers_do_not_fit_the_first_files_type_names_file_and_column(tmp_path, column, later,
                                                                                         row):
    """Arrow reads a folder in its first file's schema: a later file's 3.5 beside the first file's integer ids (or a
    value overflowing its int type) was "file <folder>: not readable as Parquet (Float value 3.500000 was truncated
    converting to int64)", naming neither the file nor the column. Now one line names both, and the row."""
    first = pd.DataFrame({"pair_id": [1, 1, 2, 2], "annotator": pd.array([1, 2, 1, 2], dtype="int32"),
                          "label": [1, 0, 1, 0]})
    second = pd.DataFrame({"pair_id": [3, 3, 4, 4], "annotator": [3, 4, 3, 4], "label": [1, 0, 1, 1]})
    second[column] = later
    write_parquet(first, tmp_path / "part-0.parquet")
    write_parquet(second, tmp_path / "part-1.parquet")
    with pytest.raises(ValidationError) as raised:
        read_judgment_shard(tmp_path, form="categorical", batch_rows=3)
    message = str(raised.value)
    assert message.startswith(f"file {tmp_path / 'part-1.parquet'}, column '{column}', row {row}: "), message
    assert "\n" not in message and "not readable as Parquet" not in message, message


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_label_gets_advice_that_mends_it(tmp_path, blank):
    """A blank label was "leave the cell empty for no label", but an empty label cell is "missing label" in both
    readers: the message sent the user from one error to the next. Both readers now say the same, and following
    the advice (a class) reads; for gold, which may be empty, leaving the cell empty is still the advice."""
    from accord.datasets import validate

    table = correlated_table(n_items=10).rename(columns={"pair_id": "task", "annotator": "worker"})
    table["label"] = table["label"].map({"A": "cat", "B": "dog", "tie": "fish"})
    table.loc[7, "label"] = blank
    path = write_parquet(table, tmp_path / "j.parquet", row_group_size=4)
    single, streamed = _validate_and_stream_refuse_alike(table, path, batch_rows=3)
    assert "row 7: blank label (give a class" in single and "empty" not in single
    emptied = table.astype({"label": object})
    emptied.loc[7, "label"] = None  # what the old advice said to do
    with pytest.raises(ValidationError, match="row 7: missing label"):
        validate(emptied)
    assert len(validate(table.assign(label=table["label"].replace(blank, "cat")))) == len(table)
    gold = table.assign(label=table["label"].replace(blank, "cat"), gold=None).astype({"gold": object})
    gold.loc[3, "gold"] = blank
    with pytest.raises(ValidationError, match="column 'gold', row 3: blank label .leave the cell empty for no gold"):
        validate(gold)


@pytest.mark.parametrize("column, cells", [
    ("label", lambda n: pa.array([["A"]] * n)), ("pair_id", lambda n: pa.array([{"q": i // 2} for i in range(n)])),
    ("annotator", lambda n: pa.array([{"w": [i % 3]} for i in range(n)]))])
def test_a_list_or_object_cell_is_the_single_process_error(tmp_path, column, cells):
    """A Parquet column of lists or structs (as JSON-derived tables hold): the streamed reader failed with Arrow's
    ArrowNotImplementedError ("Function 'dictionary_encode' has no kernel ...") and a traceback, where
    read_judgments says "must be a single value", naming the file, column and row."""
    from accord.cli import main
    from accord.datasets import read_judgments

    n = 12
    columns = {"pair_id": pa.array([f"p{i // 2}" for i in range(n)]),
               "annotator": pa.array([f"w{i % 3}" for i in range(n)]), "label": pa.array(["A", "B"] * (n // 2))}
    path = tmp_path / "j.parquet"
    pq.write_table(pa.table({**columns, column: cells(n)}), path, row_group_size=5)
    with pytest.raises(ValidationError) as single:
        read_judgments(path)
    with pytest.raises(ValidationError) as streamed:
        read_judgment_shard(path, batch_rows=4)
    assert (streamed.value.source, streamed.value.column, streamed.value.row, streamed.value.problem) == \
        (single.value.source, single.value.column, single.value.row, single.value.problem)
    assert main(["aggregate", "--distributed", "1", "--input", str(path), "--method", "dawid-skene", "--output",
                 str(tmp_path / "o.csv")]) == 2


@settings(max_examples=8, deadline=None)
@given(column=st.sampled_from(["pair_id", "annotator"]), spelling=st.sampled_from([" {}", "{} ", "\t{}\u00a0"]),
       at=st.integers(1, 29), batch_rows=st.integers(1, 7))
def test_ids_that_differ_only_in_spaces_are_refused_as_in_one_process(tmp_path_factory, column, spelling, at,
                                                                        batch_rows):
    """'p1' and Excel's 'p1 ': read_judgments refuses them naming both rows; the streamed fit took them for two
    pairs (or two raters) without a word, whichever processes they fell on."""
    from accord.datasets import read_judgments
    from accord.models.distributed import encode_shard

    table = correlated_table(n_items=10, n_workers=6, per_item=3)
    earlier = int(np.flatnonzero(table[column].to_numpy()[:at] != table[column].iloc[at])[0])
    table.loc[at, column] = spelling.format(table.loc[earlier, column])
    path = write_parquet(table, tmp_path_factory.mktemp("spaced") / "j.parquet", row_group_size=4)
    with pytest.raises(ValidationError) as single:
        read_judgments(path)
    with pytest.raises(ValidationError) as streamed:
        encode_shard(read_judgment_shard(path, batch_rows=batch_rows))
    assert str(streamed.value) == str(single.value)


def test_the_whitespace_the_streamed_reader_cuts_is_pythons():
    from accord.datasets.stream import WHITESPACE

    assert WHITESPACE == "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())


def test_pair_ids_that_differ_only_in_spaces_on_two_processes_are_one_error(tmp_path):
    """The two spellings of a pair id hash to different processes: neither saw both."""
    from accord.datasets import read_judgments
    from accord.datasets.stream import shard_of

    table = correlated_table(n_items=20, n_workers=6, per_item=3)
    spelt = next(f"{pair} " for pair in table.pair_id.unique()
                 if shard_of(np.array([pair, f"{pair} "], dtype=object), 2).tolist() in ([0, 1], [1, 0]))
    row = int(np.flatnonzero(table.pair_id == spelt.strip())[-1])
    table.loc[row, "pair_id"] = spelt
    path = write_parquet(table, tmp_path / "j.parquet")
    with pytest.raises(ValidationError) as single:
        read_judgments(path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACCORD_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [*ACCORD_LAUNCHING, "--input", str(path), "--method", "dawid-skene", "--output",
               str(tmp_path / "soft.parquet")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip() == f"accord: error: {single.value}"


def _written_under_another_name(table: pd.DataFrame, path: Path, column: str, other: str,
                                rename: bool) -> tuple[Path, list[str]]:
    """``table`` written to ``path`` (Parquet), with ``column`` called ``other`` when ``rename``, and the --columns
    flag that maps it back."""
    if not rename:
        return write_parquet(table, path), []
    return write_parquet(table.rename(columns={column: other}), path), ["--columns", f"{other}={column}"]


@pytest.mark.parametrize("rename", [False, True])
def test_per_attribute_ratings_are_refused_by_a_fit_across_processes(tmp_path, capsys, rename):
    """A fit across processes reads one label per rater and pair: per-attribute ratings whose raters each rated one
    attribute of a pair were fitted as one pooled label per pair without a word (the 'attribute' column ignored),
    where one process fits every attribute (accord aggregate's per-attribute methods)."""
    from accord.cli import main

    rows = [{"pair_id": f"p{p}", "annotator": f"{a}{w}", "attribute": a, "label": (p + w) % 2, "scale_min": 0,
             "scale_max": 1} for p in range(12) for a in ("helpful", "harmless") for w in range(3)]
    path, extra = _written_under_another_name(pd.DataFrame(rows), tmp_path / "ratings.parquet", "attribute", "aspect",
                                              rename)
    argv = ["aggregate", "--input", str(path), "--output", str(tmp_path / "o.parquet"), "--distributed", "1",
            "--method", "dawid-skene", "--form", "categorical", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: ") and "per-attribute ratings" in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(AccordError, match="per-attribute ratings"):
        read_judgment_shard(path, columns={"aspect": "attribute"} if rename else None, form="categorical")


@pytest.mark.parametrize("rename", [False, True])
def test_a_step_table_is_refused_by_a_fit_across_processes(tmp_path, capsys, rename):
    """A step-judgments table (solution_id, step) under ``--distributed`` was told to rename a column to pair_id;
    done, the shard reader read one label per rater and solution, the 'step' column unread, and a table whose steps
    were labelled by different raters was fitted as one pooled label per solution without a word. One process fits
    step tables (the step methods): refused in one line naming --distributed and the step table."""
    from accord.cli import main

    rows = [{"solution_id": f"s{s}", "step": k, "annotator": f"r{(s + k) % 5}_{k}", "label": (-1, 1)[(s * k) % 2],
             "step_text": "x", "prompt": "q"} for s in range(6) for k in range(3)]
    path, extra = _written_under_another_name(pd.DataFrame(rows), tmp_path / "steps.parquet", "step", "position",
                                              rename)
    argv = ["aggregate", "--input", str(path), "--output", str(tmp_path / "o.csv"), "--distributed", "1",
            "--method", "dawid-skene", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("accord: error: ") and err.count("\n") == 1, err
    assert "--distributed" in err and "step" in err and "pair_id" not in err, err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(AccordError, match="step-judgments table"):
        read_judgment_shard(path, columns={"position": "step"} if rename else None, form="categorical")


def test_ratings_of_responses_are_refused_by_a_fit_across_processes_as_per_attribute_ratings(tmp_path, capsys):
    """Per-attribute ratings of responses (response_id, attribute) under ``--distributed`` were told to rename a
    column to pair_id (the per-attribute refusal came after the column check); renamed, their ratings would be read
    as one label per rater and response. Now the same one line as ratings of pairs: fit them in one process."""
    from accord.cli import main
    from accord.datasets.synthetic_attributes import make_synthetic_attributes

    path = write_parquet(make_synthetic_attributes(8, 4, 2, seed=0).judgments, tmp_path / "ratings.parquet")
    argv = ["aggregate", "--input", str(path), "--output", str(tmp_path / "o.csv"), "--distributed", "1",
            "--method", "dawid-skene"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per-attribute ratings" in err and "pair_id" not in err, err
    assert not (tmp_path / "o.csv").exists()


_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize("case", [
    "nan id", "nan annotator", "nan label", "nan label, categorical", "inf then nan id", "nan then null label",
    "inf label, preference", "inf label, categorical",
])
def test_a_nan_or_infinite_cell_is_named_as_read_judgments_names_it(tmp_path, case):
    """A NaN id or label (a Parquet float column keeps NaN apart from an empty cell) was "id/label is not finite" in
    the streamed reader where read_judgments says "missing id/label"; and a preference file whose labels are numbers
    with an infinite one was refused at the infinite label's row (2), where read_judgments names row 0, the first
    number (every number is outside A / B / tie). Both readers now name the same problem, column and row."""
    from accord.datasets import read_judgments

    ids: list = ["p1", "p1", "p2", "p2", "p3", "p3"]
    raters: list = ["a", "b", "a", "b", "a", "b"]
    labels: list = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    names = ("pair_id", "annotator", "label")
    form = None
    if case == "nan id":
        ids = [1.0, 1.0, _NAN, 2.0, 3.0, 3.0]
    elif case == "nan annotator":
        raters = [1.0, _NAN, 1.0, 2.0, 1.0, 2.0]
    elif case == "inf then nan id":  # both missing and infinite: read_judgments names the missing one first
        ids = [1.0, _INF, 2.0, _NAN, 3.0, 3.0]
    elif case == "nan then null label":  # an empty cell and a NaN are both missing: the first of them is named
        labels = [0.0, 1.0, _NAN, None, 0.0, 1.0]
    elif case.startswith("nan label"):
        labels[2] = _NAN
    else:
        labels[2] = _INF
    if case.endswith("categorical"):
        names, form = ("task", "worker", "label"), "categorical"
    elif case not in ("inf label, preference", "nan label"):
        names = ("task", "worker", "label")  # crowd-kit's names: numeric labels are categorical
    table = pa.table({names[0]: pa.array(ids, from_pandas=False), names[1]: pa.array(raters, from_pandas=False),
                      names[2]: pa.array(labels, from_pandas=False)})
    path = tmp_path / "judgments.parquet"
    pq.write_table(table, path, row_group_size=4)  # two batches: the second starts at row 4
    with pytest.raises(ValidationError) as single:
        read_judgments(path, form=form)
    with pytest.raises(ValidationError) as streamed:
        read_judgment_shard(path, form=form, batch_rows=4)
    # read_judgments names a renamed column by its new name ('pair_id' for 'task'): the row and problem are compared
    assert (streamed.value.row, streamed.value.problem.split(" (")[0]) == (
        single.value.row, single.value.problem.split(" (")[0]), (str(streamed.value), str(single.value))


def test_a_gold_cell_outside_a_b_tie_under_crowdkit_names_is_refused_as_in_one_process(tmp_path):
    """With crowd-kit's names the labels decide the form once the shards are joined: labels A / B / tie beside a gold
    'C' are refused by validate, and the streamed fit scored the 'C' as a class no pair is given."""
    from accord.datasets import validate
    from accord.models.distributed import encode_shard

    table = _with_gold(correlated_table(n_items=12, n_workers=8, per_item=3))
    table = table.rename(columns={"pair_id": "task", "annotator": "worker"})
    at = int(np.flatnonzero(table["gold"].notna().to_numpy())[4])
    table.loc[at, "gold"] = "C"
    path = write_parquet(table, tmp_path / "j.parquet", row_group_size=7)
    with pytest.raises(ValidationError) as single:
        validate(table)
    with pytest.raises(ValidationError) as streamed:
        encode_shard(read_judgment_shard(path, batch_rows=5))
    assert str(streamed.value) == f"file {path}, " + str(single.value)
    assert f"column 'gold', row {at}: label outside" in str(streamed.value)


@pytest.mark.parametrize("method", ["dawid-skene", "hierarchical-dawid-skene"])
def test_partial_fit_of_a_fit_across_processes_is_one_clear_error(tmp_path, monkeypatch, method):
    """A process of a fit across processes holds its own pairs only: partial_fit refitted them alone, without the
    other processes' judgments of the raters (two gloo processes, 400 pairs, 40 judgments added: soft labels 0.87 and
    0.73 from a cold fit of all), without a word. The fit of one process goes on (the streamed fit's test above)."""
    import accord.models.distributed as distributed

    table = correlated_table(n_items=60, n_workers=8, per_item=4)
    path = write_parquet(table.iloc[:200], tmp_path / "j.parquet")
    monkeypatch.setattr(distributed, "world", lambda: (0, 2))  # the fit is told it is rank 0 of two
    model = _streamed_fit(path, method)
    monkeypatch.undo()
    with pytest.raises(AccordError, match="fitted across 2 processes"):
        model.partial_fit(table.iloc[200:].reset_index(drop=True))


def test_the_process_that_launches_torchrun_imports_no_model(tmp_path):
    """``accord aggregate --distributed 2`` checked its flags by importing the models (torch and Pyro, ~10 s on a
    small machine) in the process that only starts torchrun, before each rank imported them again. It now names
    the methods and their default inference without them; those defaults are the models' own."""
    path = write_parquet(correlated_table(n_items=4), tmp_path / "j.parquet")
    probe = ("import sys\nimport accord.cli as cli\n"
             "cli._launch_torchrun = lambda args: print(sorted({'torch', 'pyro'} & set(sys.modules))) or 0\n"
             f"sys.exit(cli.main(['aggregate', '--input', {str(path)!r}, '--method', 'dawid-skene', '--output', "
             f"{str(tmp_path / 'o.csv')!r}, '--distributed', '2']))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
    from accord.aggregate import make_method
    from accord.aggregate.methods import SHARDED_DEFAULT_INFERENCE
    from accord.models.distributed import SHARDED_METHODS

    assert SHARDED_METHODS == tuple(SHARDED_DEFAULT_INFERENCE)
    for method, inference in SHARDED_DEFAULT_INFERENCE.items():
        assert make_method(method).inference == inference
