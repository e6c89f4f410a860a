"""The command line: one-line errors with exit status 2 and no output file; aggregate on real data."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from accord.cli import main
from accord.datasets import AccordError, read_cleaned
from conftest import shared_data_or_skip

GOOD = pd.DataFrame(
    {
        "pair_id": ["p1", "p1", "p2", "p2"],
        "annotator": ["w1", "w2", "w1", "w2"],
        "label": ["A", "B", "tie", "B"],
        "prompt": ["q1", "q1", "q2", "q2"],
        "response_a": ["a1", "a1", "a2", "a2"],
        "response_b": ["b1", "b1", "b2", "b2"],
    }
)

BAD_INPUTS = {
    # with the flag that mends it, as the README says every input error does
    "missing column": (GOOD.drop(columns="annotator"),
                       "column 'annotator': missing required column.*--columns NAME=annotator"),
    "label off the set": (GOOD.assign(label=["A", "B", "C", "B"]),
                          "column 'label', row 2: label outside.*--form categorical"),
    "missing annotator": (GOOD.assign(annotator=["w1", None, "w1", "w2"]), "column 'annotator', row 1: missing id"),
    "missing pair id": (GOOD.assign(pair_id=["p1", "p1", None, "p2"]), "column 'pair_id', row 2: missing id"),
    "duplicate judgment": (GOOD.assign(annotator=["w1", "w1", "w1", "w2"]), "row 1: annotator judged this pair"),
    "same response twice": (GOOD.assign(response_b=["a1", "a1", "b2", "b2"]), "both sides of the pair are the same"),
    "empty table": (GOOD.iloc[:0], "empty"),
    "mixed label forms": (GOOD.assign(label=["A", "1", "B", "A"]), "column 'label', row 1"),
    "pair with no text": (GOOD.assign(response_b=["b1", "b1", None, None]),
                          "column 'response_b', row 2: missing response text.*pair 'p2'"),
    "pair with two texts": (GOOD.assign(response_b=["b1", "B1", "b2", "b2"]),
                            "column 'response_b': pair 'p1' is shown with two different values.*row 0.*row 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_exit_2_and_no_output(case, tmp_path, capsys):
    frame, expected = BAD_INPUTS[case]
    source = tmp_path / "judgments.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "out" / "clean.parquet"
    status = main(["aggregate", "--input", str(source), "--method", "vote-fraction", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("accord: error: ")
    assert re.search(expected, err), err
    assert str(source) in err or case == "empty table"
    assert not output.exists()
    assert not (output.parent.exists() and any(output.parent.iterdir()))



def test_a_pair_takes_its_texts_from_the_judgments_that_hold_them(tmp_path, capsys):
    # the judgments that came back from a batch, appended without the texts their pairs have in earlier rows, were
    # refused ("missing response text"), where build_cleaned takes a pair's texts from whichever judgments hold them
    source, output = tmp_path / "judgments.csv", tmp_path / "clean.parquet"
    returned = pd.DataFrame({"pair_id": ["p1", "p2"], "annotator": ["w3", "w3"], "label": ["A", "B"]})
    pd.concat([GOOD, returned], ignore_index=True).to_csv(source, index=False)
    assert main(["aggregate", "--input", str(source), "--method", "vote-fraction", "--output", str(output)]) == 0
    cleaned = read_cleaned(output).set_index("pair_id")
    assert cleaned.loc["p1", ["prompt", "chosen", "rejected"]].tolist() == ["q1", "a1", "b1"]
    assert cleaned.loc["p2", ["prompt", "chosen", "rejected"]].tolist() == ["q2", "b2", "a2"]
    assert cleaned["n_judgments"].tolist() == [3, 3]


@pytest.mark.parametrize("kind", ["folder", "missing"])
def test_an_input_that_is_a_folder_or_missing_is_named_as_such(kind, tmp_path, capsys):
    """Was: `accord aggregate --input FOLDER` (a Hugging Face download) or a missing path without a suffix said
    "cannot tell the format from the suffix ''"; now the reader's message: a folder and the table files it holds, or
    no such file."""
    source = tmp_path / "download"
    if kind == "folder":
        (source / "data").mkdir(parents=True)
        GOOD.to_csv(source / "data" / "train.csv", index=False)
    output = tmp_path / "clean.parquet"
    status = main(["aggregate", "--input", str(source), "--method", "vote-fraction", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and str(source) in err
    assert ("is a folder, not a file: name one of its table files (data/train.csv)" in err if kind == "folder"
            else "no such file" in err), err
    assert not output.exists()

def test_console_script_exit_status(tmp_path):
    exe = shutil.which("accord")
    command = [exe] if exe else [sys.executable, "-m", "accord.cli"]
    missing = tmp_path / "nope.csv"
    result = subprocess.run([*command, "aggregate", "--input", str(missing), "--output", str(tmp_path / "o.parquet")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and str(missing) in result.stderr


def test_aggregate_writes_a_cleaned_dataset(tmp_path, capsys):
    source = tmp_path / "judgments.jsonl"
    GOOD.to_json(source, orient="records", lines=True)
    output = tmp_path / "clean.jsonl"
    assert main(["aggregate", "--input", str(source), "--method", "majority", "--output", str(output)]) == 0
    cleaned = read_cleaned(output)
    assert cleaned.attrs["provenance"]["method"] == "majority"
    assert len(cleaned) == 2


def test_majority_on_d_product_reports_published_accuracy(tmp_path, capsys):
    folder = shared_data_or_skip("vldb17", "d_jn-product")
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(folder / "answer.csv"), "--columns", "question=task,answer=label",
                   "--gold", str(folder / "truth.csv"), "--method", "majority", "--output", str(output)])
    assert status == 0
    assert "accuracy 0.897" in capsys.readouterr().out
    assert len(pd.read_csv(output)) == 8315


def test_majority_on_ukpconvarg1_writes_a_loadable_cleaned_dataset(tmp_path, capsys):
    data_dir = shared_data_or_skip()
    output = tmp_path / "ukp.parquet"
    assert main(["aggregate", "--dataset", "ukpconvarg1", "--data-dir", str(data_dir), "--method", "majority",
                 "--output", str(output)]) == 0
    frame = pd.read_parquet(output)
    assert len(frame) == 16927
    assert {"prompt", "chosen", "rejected", "p_chosen", "p_tie", "weight"} <= set(frame.columns)
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(output), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == 16927


def test_datasets_list_and_describe(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "ukpconvarg1" in out and "pandalm" in out
    data_dir = shared_data_or_skip()
    assert main(["datasets", "describe", "snow2008-rte", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "8000" in out.replace(",", "") and "164" in out


def test_a_model_that_cannot_fit_names_the_file_and_column(tmp_path, capsys):
    """One class only (categorical, no label set declared): the model's error names the input file and column."""
    source = tmp_path / "one_class.csv"
    pd.DataFrame({"task": ["t1", "t1", "t2"], "worker": ["w1", "w2", "w1"], "label": ["cat"] * 3}).to_csv(
        source, index=False)
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(source), "--form", "categorical", "--columns",
                   "task=pair_id,worker=annotator", "--method", "dawid-skene", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert str(source) in err and "column 'label'" in err and "declare the label set" in err
    assert not output.exists()


def test_drop_ties_that_leaves_no_pair_names_the_flag(tmp_path, capsys):
    """Every pair tied: --drop-ties left nothing and the command said only 'the cleaned dataset is empty'."""
    source = tmp_path / "ties.csv"
    pd.DataFrame({"pair_id": ["p", "p", "q"], "annotator": ["a", "b", "a"], "label": "tie", "prompt": "x",
                  "response_a": ["r1", "r1", "r3"], "response_b": ["r2", "r2", "r4"]}).to_csv(source, index=False)
    output = tmp_path / "cleaned.parquet"
    status = main(["aggregate", "--input", str(source), "--method", "majority", "--drop-ties", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--drop-ties" in err and "tie" in err
    assert not output.exists()


def test_drop_ties_says_how_many_pairs_it_left_out(tmp_path, capsys):
    """PandaLM: 'pairs: 999' then 'wrote ... (cleaned preference dataset, 910 pairs)', the 89 pairs --drop-ties left
    out (their most likely outcome a tie) never named; the line now says how many and why."""
    source = tmp_path / "ties.csv"
    pd.DataFrame({"pair_id": ["p", "p", "q", "r"], "annotator": ["a", "b", "a", "a"], "label": ["tie", "tie", "A", "B"],
                  "prompt": "x", "response_a": ["r1", "r1", "r3", "r5"], "response_b": ["r2", "r2", "r4", "r6"]}
                 ).to_csv(source, index=False)
    output = tmp_path / "cleaned.parquet"
    assert main(["aggregate", "--input", str(source), "--method", "majority", "--drop-ties", "--output",
                 str(output)]) == 0
    out = capsys.readouterr().out
    assert len(read_cleaned(output)) == 2
    assert "cleaned preference dataset, 2 pairs; --drop-ties left out 1 pair whose most likely outcome is a tie" in out


def test_a_seed_numpy_cannot_take_is_one_line(tmp_path, capsys):
    """``--seed -1`` ended in numpy's raw ValueError and a traceback (exit 1)."""
    source = tmp_path / "judgments.csv"
    pd.DataFrame({"pair_id": ["p", "p", "q"], "annotator": ["a", "b", "a"], "label": ["A", "A", "B"]}).to_csv(
        source, index=False)
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--seed", "-1",
                   "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "seed must be a whole number" in err
    assert not output.exists()


@pytest.mark.parametrize("method", ["majority", "vote-fraction"])
def test_annotators_with_a_baseline_is_refused_before_any_output(method, tmp_path, capsys):
    """A baseline has no annotator table: ``--annotators`` is one error up front, not a written --output and then
    exit 2."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "clean.parquet"
    status = main(["aggregate", "--input", str(source), "--method", method, "--output", str(output),
                   "--annotators", str(tmp_path / "raters.csv")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "--annotators" in err and method in err
    assert not output.exists() and not (tmp_path / "raters.csv").exists()


@pytest.mark.parametrize("method", ["majority", "vote-fraction"])
def test_annotators_with_a_baseline_is_refused_before_the_input_is_read(method, tmp_path, capsys, monkeypatch):
    """``--annotators`` with a baseline was refused only after the whole input was read (and a cleaned dataset's
    texts checked): a long read for a refusal the flags alone decide. Now refused before reading."""
    import accord.cli as cli

    def unread(args):
        raise AssertionError("the input was read")

    monkeypatch.setattr(cli, "_read_input", unread)
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    status = main(["aggregate", "--input", str(source), "--method", method, "--output", str(tmp_path / "soft.csv"),
                   "--annotators", str(tmp_path / "raters.csv")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--annotators" in err and method in err


@pytest.mark.parametrize(("input_name", "output_name", "extra"), [
    ("judgments.csv", "clean.parquet", []), ("judgments.csv", "clean.jsonl", []), ("judgments.csv", "soft.csv", []),
    ("judgments.parquet", "soft.csv", ["--distributed", "1"])])
def test_an_interruption_while_writing_the_annotator_table_leaves_neither_output(input_name, output_name, extra,
                                                                                  tmp_path, capsys, monkeypatch):
    """``--output`` and ``--annotators`` are one result: interrupted while the annotator table was being written,
    ``accord aggregate`` left the soft labels (or the cleaned dataset and its sidecar) written without it. Now
    neither lands, and no temporary file is left; the same run uninterrupted writes both."""
    import accord.datasets.io as io

    source = tmp_path / input_name
    GOOD.to_csv(source, index=False) if source.suffix == ".csv" else GOOD.to_parquet(source, index=False)
    output, raters = tmp_path / "out" / output_name, tmp_path / "out" / "raters.csv"
    argv = ["aggregate", "--input", str(source), "--method", "dawid-skene", "--output", str(output),
            "--annotators", str(raters), *extra]
    write_table = io.write_table

    def interrupted(frame, path):
        if Path(path).name == raters.name:
            with io.atomic_path(path) as tmp:  # part of the table written, then Ctrl-C
                tmp.write_text("annotator,reliab")
                raise KeyboardInterrupt
        return write_table(frame, path)

    monkeypatch.setattr(io, "write_table", interrupted)
    assert main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
    monkeypatch.setattr(io, "write_table", write_table)
    assert main(argv) == 0
    assert output.exists() and raters.exists()
    assert len(pd.read_csv(raters)) == GOOD["annotator"].nunique()


@pytest.mark.parametrize("extra", [["--method", "majority", "--inference", "map"], ["--inference", "nuts"],
                                   ["--method", "vote-fraction", "--device", "cuda"]])
def test_model_settings_with_a_baseline_are_refused(extra, tmp_path, capsys):
    """``--inference`` / ``--device`` with a baseline (vote-fraction is the default method) were silently ignored."""
    err = _aggregate_refused(extra, tmp_path, capsys)
    assert extra[-2] in err and "--method" in err


def _aggregate_refused(extra: list[str], tmp_path, capsys) -> str:
    """``accord aggregate`` on a good table with ``extra`` flags: exit 2, one error line (returned), nothing written."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(source), *extra, "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert not output.exists()
    return err


def test_drop_ties_without_a_cleaned_dataset_is_refused(tmp_path, capsys):
    """``--drop-ties`` only acts on a cleaned dataset; with soft labels (.csv) it was silently ignored."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(source), "--drop-ties", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--drop-ties" in err
    assert not output.exists()
    cleaned = tmp_path / "clean.jsonl"
    assert main(["aggregate", "--input", str(source), "--drop-ties", "--output", str(cleaned)]) == 0
    assert len(read_cleaned(cleaned)) == 2  # neither pair has a tie as its single most likely outcome


def _step_table(path):
    pd.DataFrame({"solution_id": ["a", "a", "b", "b"], "step": [0, 1, 0, 1], "annotator": ["r1"] * 4,
                  "label": [1, -1, 1, 1], "step_text": ["x", "y", "z", "w"], "prompt": "q"}).to_csv(path, index=False)


def _attribute_table(path):
    from accord.datasets.synthetic_attributes import make_synthetic_attributes

    make_synthetic_attributes(8, 4, 2, seed=0).judgments.to_csv(path, index=False)


@pytest.mark.parametrize("kind, extra", [
    ("steps", ["--annotators", "ANNOTATORS"]), ("steps", ["--inference", "map"]), ("steps", ["--drop-ties"]),
    ("steps", ["--debias", "length"]), ("steps", ["--pairs-output", "PAIRS"]), ("steps", ["--form", "graded"]),
    ("steps", ["--n-types", "2"]), ("attributes", ["--n-types", "2"]),
    ("attributes", ["--form", "graded"]), ("attributes", ["--form", "categorical"]),
    ("attributes", ["--annotators", "ANNOTATORS"]), ("attributes", ["--inference", "map"]),
    ("attributes", ["--debias", "length"]), ("attributes", ["--step-labels", "binary"]),
    ("pairs", ["--step-labels", "binary"]), ("pairs", ["--pairs-output", "PAIRS"]),
])
def test_flags_the_input_kind_does_not_use_are_refused(kind, extra, tmp_path, capsys):
    """Step tables and per-attribute ratings have their own paths through ``accord aggregate``; flags that only
    another kind of input uses were silently ignored there."""
    source = tmp_path / "judgments.csv"
    {"steps": _step_table, "attributes": _attribute_table, "pairs": lambda p: GOOD.to_csv(p, index=False)}[kind](
        source)
    side = {"ANNOTATORS": tmp_path / "raters.csv", "PAIRS": tmp_path / "pairs.parquet"}
    extra = [str(side.get(part, part)) for part in extra]
    output = tmp_path / "clean.parquet"
    status = main(["aggregate", "--input", str(source), *extra, "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and extra[0] in err, err
    assert not output.exists() and not any(path.exists() for path in side.values())


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_report_limit_pairs_below_one_is_refused(limit, tmp_path, capsys):
    """``--limit-pairs 0`` used every pair and ``--limit-pairs -1`` every pair but the last (pandas' iloc[:-1])."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--methods", "majority", "--limit-pairs", limit,
                   "--output-dir", str(tmp_path / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--limit-pairs" in err
    assert not (tmp_path / "report").exists()


def test_report_methods_named_twice_is_refused(tmp_path, capsys):
    """``--methods majority,majority`` fitted the method twice and the report compared it with itself."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--methods", "majority,mace,majority", "--output-dir",
                   str(tmp_path / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--methods: majority is named twice" in err, err
    assert not (tmp_path / "report").exists()


def test_a_warning_of_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    """A warning (a rater model that did not converge, say) printed as Python's 'file.py:12: ConvergenceWarning:
    ...' and the line of accord's source that warned; accord train|evaluate|score show theirs as one line. Now every
    command says 'accord: warning: ...' in one line."""
    import warnings

    import accord.cli as cli

    def warn(args):
        # one of accord's own, and one another library raised inside the command: that one says whose it is
        warnings.warn_explicit("the fit stopped before it converged\n(raise max_steps)", RuntimeWarning,
                               cli.__file__, 1)
        warnings.warn_explicit("a kernel is slow here", UserWarning,
                               str(tmp_path / "lib" / "site-packages" / "transformers" / "modeling_utils.py"), 1)
        return 0

    monkeypatch.setattr(cli, "cmd_aggregate", warn)
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    assert main(["aggregate", "--input", str(source), "--output", str(tmp_path / "soft.csv"), "--quiet"]) == 0
    assert capsys.readouterr().err == ("accord: warning: the fit stopped before it converged (raise max_steps)\n"
                                       "accord: warning (transformers): a kernel is slow here\n")


def test_report_on_per_attribute_ratings_names_the_file(tmp_path, capsys):
    # the error came from deep in the fit ("a multi-attribute table: use ... encode_attributes") without the file
    source = tmp_path / "ratings.csv"
    pd.DataFrame({"response_id": ["r1", "r1", "r2", "r2"], "annotator": ["w1", "w2", "w1", "w2"],
                  "attribute": "helpfulness", "label": [1, 2, 3, 4], "scale_min": 0, "scale_max": 4}).to_csv(
        source, index=False)
    status = main(["report", "--input", str(source), "--output-dir", str(tmp_path / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert f"{source}: per-attribute ratings" in err and "accord aggregate" in err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("header, column", [
    ("solution_id,step ,annotator,label,step_text", "step"),
    (" solution_id,step,annotator,label,step_text", "solution_id"),
    ("response_id,annotator,Attribute,label,step_text", "attribute")])
def test_a_step_or_attribute_column_under_excels_spaces_is_named(header, column, tmp_path, capsys):
    """A step table whose header says 'step ' (Excel keeps a space typed after a name), or per-attribute ratings
    whose header says 'Attribute', was read as pairwise judgments and refused as 'missing required column pair_id',
    naming neither the column at fault nor the kind of table; now the one line names it."""
    source = tmp_path / "table.csv"
    source.write_text(header + "\ns1,0,a,1,x\ns1,1,a,0,y\n")
    status = main(["aggregate", "--input", str(source), "--output", str(tmp_path / "out.parquet")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert f"{header.split(',')[[c.strip().casefold() for c in header.split(',')].index(column)]!r} differs from " \
           f"'{column}' only in spaces or case" in err, err


def test_an_optional_column_under_excels_spaces_is_not_passed_over(tmp_path, capsys):
    """A header 'gold ' (Excel keeps a space typed after a name) in the judgments, or 'capacity ' in a raters file,
    was passed over without a word: no gold, no caps (a rater of capacity 0 was sent judgments). The judgments' column
    is now refused naming it (--columns gold=gold takes it); a gold or raters file's names are read without their
    spaces, as no --columns renames them."""
    source, gold, raters, output = (tmp_path / n for n in ("judgments.csv", "gold.csv", "raters.csv", "out.csv"))
    source.write_text("pair_id,annotator,label,gold \np1,r1,A,A\np1,r2,B,A\np2,r1,A,B\np2,r2,A,B\np3,r1,B,\n")
    status = main(["aggregate", "--input", str(source), "--method", "majority", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"file {source}, column 'gold '" in err and "--columns" in err
    status = main(["aggregate", "--input", str(source), "--method", "majority", "--columns", "gold=gold",
                   "--output", str(output)])
    assert status == 0 and "against gold (2 items)" in capsys.readouterr().out
    source.write_text("pair_id,annotator,label\np1,r1,A\np1,r2,B\np2,r1,A\np2,r2,A\np3,r1,B\n")
    gold.write_text("pair_id ,gold \np1,A\np2,B\n")
    status = main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority",
                   "--output", str(output)])
    assert status == 0 and "gold: 2 of 3 pairs have a gold label" in capsys.readouterr().out
    raters.write_text("annotator ,capacity \nr1,0\nr2,0\n")
    status = main(["suggest", "--input", str(source), "--raters", str(raters), "--budget", "3", "--output",
                   str(output)])
    assert status == 0 and pd.read_csv(output).empty, capsys.readouterr()


@pytest.mark.parametrize("header", ["pair_id,gold\n", "pair_id,gold\np1,\n"])
def test_a_gold_file_without_gold_labels_is_one_line(header, tmp_path, capsys):
    # a header-only gold file (or one whose gold cells are all empty) raised IndexError while naming an example id
    source, gold, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    GOOD.to_csv(source, index=False)
    gold.write_text(header)
    status = main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority",
                   "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert f"file {gold}: no gold labels (column 'gold' holds no value)" in err
    assert not output.exists()


@pytest.mark.parametrize("rows", [
    ["p1,A", "p1,B"],     # one pair, two gold labels: the first was taken without a word
    ["p1,A", '"p1 ",B'],  # the same after the ids' spaces are cut: pandas' InvalidIndexError traceback
    ["p1,A", '"p1 ",A'],  # two rows that agree: not an error
])
@pytest.mark.parametrize("command", ["aggregate", "report"])
def test_a_gold_file_with_two_gold_labels_for_one_pair_is_one_line(rows, command, tmp_path, capsys):
    source, gold, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "out"
    GOOD.to_csv(source, index=False)
    gold.write_text("\n".join(["pair_id,gold", *rows, "p2,B"]) + "\n")
    where = ["--output", str(output / "soft.csv")] if command == "aggregate" else ["--output-dir", str(output)]
    status = main([command, "--input", str(source), "--gold", str(gold), "--method" + ("s" * (command == "report")),
                   "majority", *where, "--quiet"])
    err = capsys.readouterr().err
    if rows[0].split(",")[1] == rows[1].split(",")[1]:
        assert status == 0, err
        return
    assert status == 2 and err.count("\n") == 1, err
    assert f"file {gold}, column 'gold', row 1: pair 'p1' has two gold labels ('A' in row 0, 'B' in row 1)" in err
    assert not output.exists()


def test_a_step_table_with_a_byte_order_mark_is_read_as_step_judgments(tmp_path, capsys):
    # the BOM was read into the first column name ('\ufeffsolution_id'): the step table was taken for a preference
    # table, and the error asked for a pair_id column
    source, output = tmp_path / "steps.csv", tmp_path / "steps.parquet"
    source.write_bytes("\ufeffsolution_id,step,annotator,label,step_text\ns1,0,a,1,x\ns1,1,a,-1,y\n".encode())
    assert main(["aggregate", "--input", str(source), "--output", str(output)]) == 0
    assert "cleaned step dataset, 1 solution, 2 steps" in capsys.readouterr().out


def test_a_step_table_renamed_by_columns_is_read_as_step_judgments(tmp_path, capsys):
    # the step table was recognised by its header before --columns renamed it: a table with 'sid' for solution_id
    # was taken for a preference table, and the error asked for a pair_id column
    source, output = tmp_path / "steps.csv", tmp_path / "steps.parquet"
    source.write_text("sid,position,annotator,label,step_text\ns1,0,a,1,x\ns1,1,a,-1,y\n")
    status = main(["aggregate", "--input", str(source), "--columns", "sid=solution_id,position=step",
                   "--output", str(output)])
    assert status == 0, capsys.readouterr().err
    assert "cleaned step dataset, 1 solution, 2 steps" in capsys.readouterr().out


def test_a_step_without_a_text_names_the_input_file(tmp_path, capsys):
    # the cleaned step dataset's "step 1 of solution 's2' has no text" named no file, as the README says every input
    # error does (the pairwise path names it)
    source, output = tmp_path / "steps.csv", tmp_path / "steps.parquet"
    source.write_text("solution_id,step,annotator,label,step_text\ns1,0,a,1,x\ns1,1,a,-1,y\ns2,0,a,1,z\n"
                      "s2,1,a,1,\n")
    assert main(["aggregate", "--input", str(source), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(source) in err and "column 'step_text'" in err and "'s2'" in err
    assert not output.exists()


def test_a_step_table_is_read_as_judgments_are(tmp_path, capsys):
    # the step path read the file with pandas' defaults: a ';' header (recognised for pairwise judgments, and by the
    # step check itself) gave "missing required column", and the solutions "001" and "01" became one solution 1
    source, output = tmp_path / "steps.csv", tmp_path / "steps.jsonl"
    source.write_text("solution_id;step;annotator;label;step_text\n001;0;a;1;x\n01;0;a;-1;y\n")
    assert main(["aggregate", "--input", str(source), "--output", str(output)]) == 0, capsys.readouterr().err
    cleaned = pd.read_json(output, lines=True, dtype={"solution_id": str})
    assert cleaned["solution_id"].tolist() == ["001", "01"] and cleaned["labels"].tolist() == [[1.0], [0.0]]


def test_a_reader_that_leaves_early_gets_no_traceback():
    # `accord datasets list | head -1` printed a BrokenPipeError traceback (twice: once more at Python's exit)
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "accord.cli", "datasets", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the first line (head leaves after some): every write fails
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("command", [
    ["aggregate", "--output", "{input}"],
    ["aggregate", "--method", "dawid-skene", "--output", "{tmp}/soft.csv", "--annotators", "{input}"],
    ["suggest", "--budget", "2", "--output", "{input}"],
])
def test_an_output_that_is_the_input_file_is_refused(command, tmp_path, capsys):
    """``--output`` (or ``--annotators``) naming the --input file wrote over the judgments, exit 0."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    before = source.read_bytes()
    argv = [part.format(input=tmp_path / "." / source.name, tmp=tmp_path) for part in command]
    status = main([argv[0], "--input", str(source), *argv[1:]])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--input file" in err
    assert source.read_bytes() == before and not (tmp_path / "soft.csv").exists()


@pytest.mark.parametrize("flag", [("--n-pairs", "0"), ("--seed", "-1"), ("--reward-steps", "-1"),
                                  ("--reward-batch-size", "0"), ("--reward-learning-rate", "nan"),
                                  ("--freeze-layers", "-1")])
def test_demo_bad_numbers_name_the_flag_before_anything_is_written(flag, tmp_path, capsys):
    """They were named by field ('n_pairs', "config: 'batch_size'"), the reward ones after the rater fits had
    written cleaned.parquet; --reward-steps -1 was taken as 0."""
    out = tmp_path / "demo"
    status = main(["demo", "--n-pairs", "40", "--n-annotators", "6", "--reward-steps", "1", "--backbone",
                   str(tmp_path / "no-backbone"), "--output-dir", str(out), "--quiet", *flag])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith(f"accord: error: {flag[0]}:"), err
    assert not out.exists()



def test_every_flag_of_every_command_has_help():
    """--seed, --quiet, report's --title and --output-dir, demo's --n-pairs ... showed no text in --help."""
    import argparse

    from accord.cli import build_parser

    def flags(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from flags(sub, f"{name} {sub_name}")
            elif action.option_strings:
                yield name, action

    bare = [f"{name} {action.option_strings[0]}" for name, action in flags(build_parser(), "accord")
            if not action.help]
    assert bare == []


def test_the_help_says_a_distributed_fit_writes_soft_labels_where_one_process_writes_a_cleaned_dataset():
    """``--distributed --output x.parquet`` writes soft labels, where the one-process fit of judgments with response
    texts writes a cleaned dataset; neither --output's nor --distributed's help said so."""
    import argparse

    from accord.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.option_strings[0]: " ".join(action.help.split())
             for action in commands.choices["aggregate"]._actions if action.option_strings and action.help}
    assert "with --distributed always soft labels" in helps["--output"]
    assert "soft labels" in helps["--distributed"] and "never a cleaned dataset" in helps["--distributed"]


@pytest.mark.parametrize("flag", ["--input", "--gold"])
def test_report_output_dir_holding_the_input_is_refused(flag, tmp_path, capsys, monkeypatch):
    """The report swaps its whole --output-dir into place: ``--output-dir .`` beside the judgments (or the gold
    file) removed them, exit 0."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    source = work / "judgments.csv"
    GOOD.to_csv(source, index=False)
    gold = work / "gold.csv"
    pd.DataFrame({"pair_id": ["p1", "p2"], "gold": ["A", "B"]}).to_csv(gold, index=False)
    shutil.copy(source if flag == "--gold" else gold, elsewhere)
    monkeypatch.chdir(work)
    inputs = (["--input", "judgments.csv", "--gold", str(elsewhere / "gold.csv")] if flag == "--input"
              else ["--input", str(elsewhere / "judgments.csv"), "--gold", "gold.csv"])
    status = main(["report", *inputs, "--output-dir", ".", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and f"holds the {flag} file" in err, err
    assert source.exists() and gold.exists() and not (work / "report.html").exists()


@pytest.mark.parametrize("flag", [("--sep", ";"), ("--encoding", "latin-1")])
def test_sep_and_encoding_with_an_input_they_do_not_apply_to_are_refused(flag, tmp_path, capsys):
    """With a Parquet input they failed as 'not a readable Parquet file (truncated or corrupt?): TypeError ...'."""
    source = tmp_path / "judgments.parquet"
    GOOD.to_parquet(source)
    output = tmp_path / "soft.csv"
    status = main(["aggregate", "--input", str(source), *flag, "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith(f"accord: error: {flag[0]}: only for a "), err
    assert "corrupt" not in err and not output.exists()


@pytest.mark.parametrize("n_types", ["1", "2", "auto"])
def test_n_types_reaches_the_rater_types_model(n_types, tmp_path, capsys, monkeypatch):
    """``accord aggregate --method rater-types`` always chose the number of types itself (n_types='auto'): the
    command line had no way to fix it."""
    from accord.models.rater_types import RaterTypes

    fitted = []
    real_fit = RaterTypes.fit
    def fit(self, table):
        fitted.append(self.n_types)
        self.max_steps = 50  # what reaches the model is asserted, not the fit's convergence: a short fit (~10x faster)
        return real_fit(self, table)

    monkeypatch.setattr(RaterTypes, "fit", fit)
    source, raters = tmp_path / "judgments.csv", tmp_path / "raters.csv"
    pd.concat([GOOD.assign(pair_id=GOOD["pair_id"] + str(i)) for i in range(4)]).to_csv(source, index=False)
    assert main(["aggregate", "--input", str(source), "--method", "rater-types", "--n-types", n_types,
                 "--output", str(tmp_path / "soft.csv"), "--annotators", str(raters), "--quiet"]) == 0
    assert fitted[0] == (n_types if n_types == "auto" else int(n_types))  # "auto" then fits each candidate
    if n_types != "auto":
        assert set(pd.read_csv(raters)["type"]) <= {f"type{t + 1}" for t in range(int(n_types))}


@pytest.mark.parametrize("extra", [["--method", "dawid-skene", "--n-types", "2"],
                                   ["--n-types", "2"]])  # the default method, vote-fraction
def test_n_types_without_rater_types_is_refused(extra, tmp_path, capsys):
    assert "--n-types: only method rater-types" in _aggregate_refused(extra, tmp_path, capsys)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_n_types_not_a_whole_number_is_a_usage_error(value, tmp_path, capsys):
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    with pytest.raises(SystemExit) as stopped:
        main(["aggregate", "--input", str(source), "--method", "rater-types", f"--n-types={value}",
              "--output", str(tmp_path / "soft.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and "argument --n-types: expected a whole number >= 1 or 'auto'" in err[-1]


def test_gold_with_per_attribute_ratings_is_one_line(tmp_path, capsys):
    """``accord aggregate --gold`` on per-attribute ratings (items are responses, no pair_id) ended in a KeyError
    'pair_id' traceback; the attribute models do not read gold labels: the flag is refused in one line."""
    source, gold = tmp_path / "ratings.csv", tmp_path / "gold.csv"
    _attribute_table(source)
    response = pd.read_csv(source)["response_id"].iloc[0]
    pd.DataFrame({"pair_id": [response], "gold": [3]}).to_csv(gold, index=False)
    output = tmp_path / "scores.parquet"
    status = main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "attribute-mean",
                   "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("accord: error: --gold: not used with "
                                                                    "per-attribute ratings"), err
    assert not output.exists()


def test_suggest_refuses_gold_it_would_ignore(tmp_path, capsys):
    """``accord suggest --gold FILE`` read and checked the gold file, then suggested the same batch as without it
    (the rater models fit without gold labels), exit 0."""
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    GOOD.to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1", "p2"], "gold": ["A", "B"]}).to_csv(gold, index=False)
    output = tmp_path / "batch.csv"
    status = main(["suggest", "--input", str(source), "--gold", str(gold), "--budget", "2", "--output", str(output),
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--gold" in err and "suggest" in err, err
    assert not output.exists()
    with pytest.raises(SystemExit):  # and its help does not offer the flag it refuses
        main(["suggest", "--help"])
    assert "--gold" not in capsys.readouterr().out


@pytest.mark.parametrize("command", ["aggregate", "suggest"])
@pytest.mark.parametrize("device", ["nope", "cuda:99"])
def test_a_device_torch_cannot_use_is_one_line_naming_the_flag(command, device, tmp_path, capsys):
    """``--device nope`` (or a CUDA device the machine lacks) ended in torch's RuntimeError or AssertionError
    traceback from inside the fit, exit 1."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "out.csv"
    extra = ["--budget", "2"] if command == "suggest" else []
    status = main([command, "--input", str(source), "--method", "dawid-skene", "--device", device, *extra,
                   "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("accord: error: --device"), err
    assert not output.exists()


def test_demo_output_dir_under_a_file_is_refused_before_the_fits(tmp_path, capsys, monkeypatch):
    """``accord demo --output-dir notes.txt/demo`` fitted every rater model, then ended in mkdir's FileExistsError
    traceback at the first write."""
    import accord.cli as cli

    monkeypatch.setattr(cli, "_demo", lambda *_args, **_kwargs: pytest.fail("the demo ran"))
    (tmp_path / "notes.txt").write_text("a file\n")
    status = main(["demo", "--output-dir", str(tmp_path / "notes.txt" / "demo"), "--n-pairs", "20",
                   "--n-annotators", "5", "--reward-steps", "0"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--output-dir" in err and "is a file, not a folder" in err, err


@pytest.mark.parametrize("kind, extra", [("pairs", ["--method", "dawid-skene", "--annotators", "OUT"]),
                                         ("attributes", ["--method", "attribute-mean", "--pairs-output", "OUT"])])
def test_two_outputs_in_one_file_are_refused(kind, extra, tmp_path, capsys, monkeypatch):
    """``--output labels.csv --annotators ./labels.csv`` wrote the soft labels, then the annotator table over them,
    exit 0 (likewise --pairs-output over --output): one of the two outputs was lost without a word."""
    source = tmp_path / "judgments.csv"
    {"attributes": _attribute_table, "pairs": lambda p: GOOD.to_csv(p, index=False)}[kind](source)
    monkeypatch.chdir(tmp_path)
    output = "out.parquet"
    extra = [f"./{output}" if part == "OUT" else part for part in extra]
    status = main(["aggregate", "--input", str(source), *extra, "--output", output, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "is also the --output file" in err, err
    assert not (tmp_path / output).exists()


@pytest.mark.parametrize("command", [["aggregate", "--output", "OUT/soft.csv"],
                                     ["aggregate", "--output", "OUT/s.parquet"],
                                     ["suggest", "--budget", "2", "--output", "OUT/batch.csv"],
                                     ["report", "--output-dir", "OUT/report"]])
def test_data_dir_without_a_named_dataset_is_refused(command, tmp_path, capsys):
    """``--data-dir`` is the folder of the named datasets (--dataset NAME); with --input it was ignored, exit 0."""
    source = tmp_path / "judgments.csv"
    (_step_table if command[-1].endswith("s.parquet") else lambda p: GOOD.to_csv(p, index=False))(source)
    command = [part.replace("OUT", str(tmp_path)) for part in command]
    status = main([command[0], "--input", str(source), "--data-dir", str(tmp_path), *command[1:], "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--data-dir" in err, err
    assert not Path(command[-1]).exists()


def test_report_output_dir_under_a_file_is_refused_before_the_fits(tmp_path, capsys, monkeypatch):
    """``accord report --output-dir notes.txt/report`` fitted every method, then said only 'cannot write the report
    there: File exists'."""
    import accord.aggregate as aggregate

    monkeypatch.setattr(aggregate, "make_method", lambda *_args, **_kwargs: pytest.fail("a method was fitted"))
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    (tmp_path / "notes.txt").write_text("a file\n")
    status = main(["report", "--input", str(source), "--methods", "majority", "--output-dir",
                   str(tmp_path / "notes.txt" / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--output-dir" in err and "is a file, not a folder" in err, err


@pytest.mark.parametrize("group, needle", [("label", "--group label"), ("annotator_group", "finite number")])
def test_report_group_errors_name_the_file_and_come_before_the_fits(group, needle, tmp_path, capsys):
    """``--group label`` fitted every method and then the context model on the label as the rater group (it read
    the answer off the table), and an error of the context fit came without the file; now the pair's columns are
    refused before the fits, and the context fit's errors name the file."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=12, n_annotators=4, judgments_per_pair=3, n_groups=2, seed=0).judgments
    codes = pd.factorize(table["pair_id"])[0]
    table = table.assign(item_length=(codes % 4).astype(float), annotator_group=table["annotator_group"].astype(str))
    table.loc[codes == 0, "item_length"] = float("inf")  # an item covariate the context fit refuses
    source = tmp_path / "judgments.csv"
    table.to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--methods", "majority", "--group", group, "--output-dir",
                   str(tmp_path / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and needle in err, err
    if group != "label":
        assert str(source) in err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("method, kind", [("first-error", "is a step method"),
                                          ("attribute-mean", "is a method for per-attribute ratings"),
                                          ("em", "an unknown method")])
def test_a_method_of_another_input_kind_on_pairwise_judgments_says_so(method, kind, tmp_path, capsys):
    """``--method first-error`` on pairwise judgments said "unknown method" with no hint: now it says which kind of
    input the method is for and which methods pairwise judgments take."""
    from accord.aggregate.methods import METHODS

    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "soft.csv"
    capsys.readouterr()
    status = main(["aggregate", "--input", str(source), "--method", method, "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"accord: error: --method {method}: {kind}"), err
    assert f"a judgments table (not steps or attribute ratings) takes one of: {', '.join(METHODS)}" in err
    assert not output.exists()


@pytest.mark.parametrize("command", [["list"], ["describe", "pandalm"]])
@pytest.mark.parametrize("by_env", [False, True])
def test_datasets_with_a_data_dir_that_is_a_file_is_one_line(command, by_env, tmp_path, capsys, monkeypatch):
    """``accord datasets list --data-dir FILE`` listed paths under the file (exit 0): now one error naming it."""
    not_a_folder = tmp_path / "data.csv"
    not_a_folder.write_text("a,b\n1,2\n")
    if by_env:
        monkeypatch.setenv("ACCORD_DATA_DIR", str(not_a_folder))
    capsys.readouterr()
    status = main(["datasets", *command, *([] if by_env else ["--data-dir", str(not_a_folder)])])
    captured = capsys.readouterr()
    setting = "$ACCORD_DATA_DIR" if by_env else "--data-dir"  # the flag typed (was the keyword, data_dir)
    assert status == 2 and captured.err.count("\n") == 1, captured
    assert captured.err.startswith(f"accord: error: {setting} {not_a_folder}: is a file, not a folder"), captured.err
    assert str(not_a_folder / "") not in captured.out


@pytest.mark.parametrize("compression", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("table", [".csv", ".tsv"])
def test_aggregate_writes_compressed_table_outputs_that_read_back(table, compression, tmp_path):
    """``--output x.csv.gz`` was refused as an unknown file type although the readers take compressed tables: now
    the soft labels are written compressed and read back equal to the plain file's."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    plain, packed = tmp_path / f"soft{table}", tmp_path / f"soft{table}{compression}"
    for output in (plain, packed):
        assert main(["aggregate", "--input", str(source), "--method", "vote-fraction", "--output", str(output)]) == 0
    sep = "\t" if table == ".tsv" else ","
    with open(packed, "rb") as raw:  # really compressed, not a plain text under a compressed name
        assert raw.read(3) != plain.read_bytes()[:3]
    pd.testing.assert_frame_equal(pd.read_csv(packed, sep=sep), pd.read_csv(plain, sep=sep))


def test_aggregate_refuses_a_compressed_cleaned_suffix(tmp_path, capsys):
    # a compressed .jsonl would silently be soft labels where the plain .jsonl is a cleaned dataset
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output = tmp_path / "soft.jsonl.gz"
    capsys.readouterr()
    assert main(["aggregate", "--input", str(source), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--output {output}: unknown file type '.gz'" in err, err
    assert not output.exists()


def test_aggregate_writes_a_compressed_annotator_table(tmp_path):
    """``--annotators raters.csv.gz`` was refused; it is the same table as ``raters.csv``, compressed."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    for i, name in enumerate(("raters.csv", "raters.csv.gz")):
        assert main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--output",
                     str(tmp_path / f"soft-{i}.csv"), "--annotators", str(tmp_path / name), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "raters.csv.gz"), pd.read_csv(tmp_path / "raters.csv"))


@pytest.mark.parametrize("kind, method", [
    ("pairs", "majority"), ("pairs", "vote-fraction"), ("pairs", None),
    ("steps", "majority"), ("steps", "vote-fraction"), ("steps", None),
    ("attributes", "attribute-mean"), ("attributes", "multi-attribute-ordinal"), ("attributes", None),
])
@pytest.mark.parametrize("seed", ["0", "7"])
def test_a_seed_given_to_a_method_that_draws_nothing_at_random_is_refused(kind, method, seed, tmp_path, capsys):
    """``--seed`` was taken and silently unused by the baselines, the step vote methods and the per-attribute
    methods (the default as well: ``None`` is the default method of each kind here); it is now one line, exit 2,
    nothing written, as the other flags a method does not use are. ``--seed 0`` (the default's value) included."""
    source = tmp_path / "judgments.csv"
    {"steps": _step_table, "attributes": _attribute_table, "pairs": lambda p: GOOD.to_csv(p, index=False)}[kind](
        source)
    output = tmp_path / "clean.parquet"
    given = ["--method", method] if method else []
    status = main(["aggregate", "--input", str(source), *given, "--seed", seed, "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("accord: error: --seed: method "), err
    assert not output.exists()
    assert main(["aggregate", "--input", str(source), *given, "--output", str(output), "--quiet"]) == 0


@pytest.mark.parametrize("kind, method", [("pairs", "dawid-skene"), ("steps", "first-error"),
                                          ("steps", "dawid-skene")])
def test_a_seed_is_taken_by_a_method_that_draws_at_random(kind, method, tmp_path, capsys):
    """The seeded methods keep taking ``--seed`` (0 or not); step dawid-skene now hands it to its Dawid-Skene."""
    source = tmp_path / "judgments.csv"
    {"steps": _step_table, "pairs": lambda p: GOOD.to_csv(p, index=False)}[kind](source)
    frames = []
    for seed in (None, "0"):
        output = tmp_path / f"clean{seed}.parquet"
        flags = [] if seed is None else ["--seed", seed]
        assert main(["aggregate", "--input", str(source), "--method", method, *flags, "--output", str(output),
                     "--quiet"]) == 0, capsys.readouterr().err
        frames.append(pd.read_parquet(output))
    pd.testing.assert_frame_equal(frames[0], frames[1])  # no --seed is --seed 0
    assert main(["aggregate", "--input", str(source), "--method", method, "--seed", "3", "--output",
                 str(tmp_path / "clean3.parquet"), "--quiet"]) == 0


@pytest.mark.parametrize("method", ["first-error", "dawid-skene"])
def test_a_step_rater_model_writes_its_annotator_table(method, tmp_path, capsys):
    """``--annotators`` on a step table was refused as a flag of another kind of input, though the step rater models
    have an annotator table: it is now written beside the cleaned step dataset, the model's own table."""
    from accord.aggregate import fit_step_method
    from accord.datasets.steps import validate_steps

    source = tmp_path / "judgments.csv"
    _step_table(source)
    output, raters = tmp_path / "steps.parquet", tmp_path / "raters.csv"
    assert main(["aggregate", "--input", str(source), "--method", method, "--output", str(output), "--annotators",
                 str(raters)]) == 0, capsys.readouterr().err
    assert f"wrote {raters} (annotator table, 1 annotator)" in capsys.readouterr().out
    expected = fit_step_method(method, validate_steps(pd.read_csv(source))).annotators_.reset_index()
    written = pd.read_csv(raters)
    assert list(written.columns) == list(expected.columns) and written["annotator"].tolist() == ["r1"]
    numeric = expected.select_dtypes("number").columns
    pd.testing.assert_frame_equal(written[numeric], expected[numeric], check_dtype=False, rtol=1e-9)
    assert output.exists()


@pytest.mark.parametrize(("flag", "output", "annotators"), [
    ("--annotators", "clean.parquet", "notes.txt/raters.csv"),
    ("--annotators", "soft.csv", "notes.txt/sub/raters.csv.gz"),
    ("--output", "notes.txt/clean.jsonl", "raters.csv"),
])
def test_an_output_under_a_file_is_refused_before_the_fit_and_nothing_is_written(flag, output, annotators, tmp_path,
                                                                                  capsys):
    """``--annotators notes.txt/raters.csv`` (a file where a folder should be) was found when the table was written:
    the cleaned dataset was written by then, and the command exited 2 with it in place."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    (tmp_path / "notes.txt").write_text("my notes")
    status = main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--output",
                   str(tmp_path / output), "--annotators", str(tmp_path / annotators), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"accord: error: {flag} ") and "notes.txt is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgments.csv", "notes.txt"]


def test_an_annotator_table_that_cannot_be_made_leaves_no_output(tmp_path, capsys, monkeypatch):
    # the table is made when first asked for: it was asked for after the cleaned dataset was written
    from accord.models.dawid_skene import DawidSkene

    def broken(self):
        raise AccordError("the annotator table failed")

    monkeypatch.setattr(DawidSkene, "_annotator_table", broken)
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    status = main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--output",
                   str(tmp_path / "clean.parquet"), "--annotators", str(tmp_path / "raters.csv"), "--quiet"])
    assert status == 2 and "the annotator table failed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgments.csv"]


def test_report_output_dir_of_other_files_is_refused_before_the_fits(tmp_path, capsys, monkeypatch):
    """``--output-dir`` naming a folder of other files (no earlier report.html) was refused when the report was
    written, after every method was fitted."""
    import accord.aggregate as aggregate

    monkeypatch.setattr(aggregate, "make_method", lambda *_args, **_kwargs: pytest.fail("a method was fitted"))
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    status = main(["report", "--input", str(source), "--methods", "majority", "--output-dir", str(folder),
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"accord: error: --output-dir {folder}: holds files and no earlier report"), err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_pairs_output_under_a_file_is_refused_before_the_responses_are_written(tmp_path, capsys):
    """``--output responses.parquet --pairs-output notes.txt/pairs.parquet``: the responses were written, then the
    pairs failed, exit 2 with one of the two outputs in place."""
    source = tmp_path / "ratings.csv"
    _attribute_table(source)
    (tmp_path / "notes.txt").write_text("my notes")
    status = main(["aggregate", "--input", str(source), "--method", "attribute-mean", "--output",
                   str(tmp_path / "responses.parquet"), "--pairs-output", str(tmp_path / "notes.txt" / "pairs.parquet"),
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("accord: error: --pairs-output ") and "notes.txt is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "ratings.csv"]


def test_a_command_run_in_process_leaves_the_threads_and_environment_as_they_were(tmp_path, capsys, monkeypatch):
    """The command picks torch's threads (one for a small table) and OpenMP's environment for itself; a notebook
    or test that runs ``main`` keeps its own count and environment after it."""
    import os

    import torch

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    source = tmp_path / "judgments.jsonl"
    GOOD.to_json(source, orient="records", lines=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["aggregate", "--input", str(source), "--method", "dawid-skene",
                     "--output", str(tmp_path / "clean.jsonl")]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert "OMP_WAIT_POLICY" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "2"


@pytest.mark.parametrize("cell, comma", [("12,5", True), ("long", False)])
def test_a_covariate_that_is_not_numeric_names_its_row_and_value(tmp_path, capsys, cell, comma):
    # was: "covariate 'item_len': column is not numeric (dtype str)": neither the cell nor why; a spreadsheet's
    # decimal comma ("12,5" in a ';'-delimited export) is the usual cause
    path = tmp_path / "judgments.csv"
    rows = [f"p{p};w{w};{'AB'[(p + w) % 2]};{p}.5" for p in range(4) for w in range(3)]
    rows[7] = rows[7].rsplit(";", 1)[0] + f";{cell}"
    path.write_text("pair_id;annotator;label;item_len\n" + "\n".join(rows) + "\n")
    output = tmp_path / "soft.csv"
    assert main(["aggregate", "--input", str(path), "--debias", "item_len", "--quiet", "--output", str(output)]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "'item_len'" in message and f"row 7 is '{cell}'" in message
    assert ("decimal comma" in message) == comma
    assert not output.exists()


def test_report_quiet_prints_the_result_without_a_line_per_fit(tmp_path, capsys):
    """Was: `accord report --quiet` printed "fitted X in Ns" for every method, where --quiet silences the lines per
    phase (accord train --quiet) and leaves the results (aggregate's summary, score's table); now only what it
    wrote, and the fit lines without --quiet."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    for quiet in (True, False):
        capsys.readouterr()
        status = main(["report", "--input", str(source), "--methods", "majority", "--output-dir",
                       str(tmp_path / f"report-{quiet}"), *(["--quiet"] if quiet else [])])
        out = capsys.readouterr().out
        assert status == 0 and "report.html" in out, out
        assert ("fitted majority" in out) != quiet, out


def _graded_with_gold(tmp_path: Path) -> tuple[dict[str, int], Path, Path]:
    """Twelve pairs of graded labels (-2..2), four raters each within one grade of the pair's true grade, written to
    ``graded.csv``, and the true grades to ``gold.csv``."""
    import numpy as np

    rng = np.random.default_rng(0)
    truth = {f"t{i}": int(rng.integers(-2, 3)) for i in range(12)}
    rows = [{"pair_id": pair, "annotator": f"w{w}", "label": int(np.clip(t + rng.integers(-1, 2), -2, 2))}
            for pair, t in truth.items() for w in range(4)]
    source, gold = tmp_path / "graded.csv", tmp_path / "gold.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    pd.DataFrame({"pair_id": list(truth), "gold": list(truth.values())}).to_csv(gold, index=False)
    return truth, source, gold


def test_graded_gold_under_the_ordinal_model_is_scored_as_its_side(tmp_path, capsys):
    # the ordinal model's soft labels are over sides (A / tie / B): graded gold was scored as given, and `accord
    # aggregate --gold` ended with a traceback ("gold label 2 is not one of the classes ['A', 'B', 'tie']") after it
    # had written its output
    truth, source, gold = _graded_with_gold(tmp_path)
    output = tmp_path / "soft.csv"
    assert main(["aggregate", "--input", str(source), "--scale", "2", "--method", "ordinal", "--gold", str(gold),
                 "--output", str(output), "--quiet"]) == 0
    printed = capsys.readouterr().out
    ties = sum(t == 0 for t in truth.values())  # grade 0 is the side 'tie', which the accuracy leaves out
    left_out = "; the accuracy scores sides" + (f", leaving out {ties} gold tie{'s' if ties != 1 else ''} (gold 0)"
                                                if ties else "")
    assert f"against gold ({len(truth)} items{left_out}): accuracy" in printed and output.exists()


@pytest.mark.parametrize("labels, gold, row", [
    # a gold label off the label set: the check read the gold joined to the judgments and named a judgment's row
    (["A", "B", "A", "A", "B", "B"], "pair_id,gold\np2,C\np3,B\np1,A\n", 0),
    # a gold value that is no whole number: its position among the rows with a gold value was named
    ([1, 0, 1, 1, 0, 0], "pair_id,gold\np1,\np1,1\np2,x\np3,0\n", 2),
])
def test_a_bad_gold_label_names_its_row_of_the_gold_file(labels, gold, row, tmp_path, capsys):
    source, gold_file, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3", "p3"], "annotator": ["w1", "w2"] * 3,
                  "label": labels}).to_csv(source, index=False)
    gold_file.write_text(gold)
    form = ["--form", "categorical"] if isinstance(labels[0], int) else []
    assert main(["aggregate", "--input", str(source), *form, "--gold", str(gold_file), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"file {gold_file}, column 'gold', row {row}:" in err, err
    assert not output.exists()


@pytest.mark.parametrize("duplicates", ["first", "last"])
@pytest.mark.parametrize("problem", ["no text", "two texts", "two pools"])
def test_an_error_after_dropping_repeats_names_the_files_row(problem, duplicates, tmp_path, capsys):
    """With --duplicates first or last, the checks after validation (a pair none of whose judgments holds a text,
    a pair shown with two texts, a rater in two pools) named the row of the table without the dropped repeat: the
    file's rows 2 and 3 were reported as rows 1 and 2, so the user looked at the wrong row of the file."""
    repeat = {"pair_id": "p1", "annotator": "w1", "label": "A", "response_a": "x", "response_b": "y", "pool": "in"}
    bad = [{"pair_id": "p2", "annotator": "w1", "label": "B", "response_a": "u", "response_b": "v", "pool": "in"},
           {"pair_id": "p2", "annotator": "w2", "label": "B", "response_a": "u", "response_b": "v", "pool": "in"}]
    if problem == "no text":
        bad = [{**row, "response_a": None} for row in bad]
    elif problem == "two texts":
        bad[1]["response_b"] = "w"
    else:
        bad.append({**bad[0], "pair_id": "p3", "pool": "out"})
    source = tmp_path / "judgments.csv"
    pd.DataFrame([repeat, repeat, *bad]).to_csv(source, index=False)
    output = tmp_path / ("batch.csv" if problem == "two pools" else "clean.parquet")
    command = "suggest" if problem == "two pools" else "aggregate"
    status = main([command, "--input", str(source), "--duplicates", duplicates, "--output", str(output),
                   *(["--budget", "2"] if command == "suggest" else ["--method", "majority"])])
    err = capsys.readouterr().err
    expected = {"no text": "column 'response_a', row 2: missing response text",
                "two texts": r"\('v' in row 2, 'w' in row 3\)",
                "two pools": "column 'pool', row 4: annotator 'w1' is in pool 'out'"}[problem]
    assert status == 2 and re.search(expected, err), err
    assert not output.exists()


def test_report_with_limit_pairs_names_the_files_row(tmp_path, capsys):
    """``accord report --limit-pairs N`` kept the first N pairs and numbered the rows afresh, so a check of the
    fit (a pair given two response-id pairs) named the row of the filtered table: the file's row 4, after a row of
    a pair left out, was reported as row 3."""
    source = tmp_path / "judgments.csv"
    pd.DataFrame({"pair_id": ["p0", "p1", "p2", "p3", "p2", "p2"], "annotator": ["w1", "w1", "w1", "w1", "w2", "w3"],
                  "label": ["A", "A", "B", "B", "B", "B"], "response_a_id": ["r1", "x", "u", "s", "u", "u"],
                  "response_b_id": ["r2", "y", "v", "t", "w", "v"]}).to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--limit-pairs", "3", "--methods", "bradley-terry",
                   "--output-dir", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert status == 2 and "column 'response_a_id', row 4: one pair_id is given two different" in err, err


def test_report_refuses_a_group_named_population_before_the_fits(tmp_path, capsys, monkeypatch):
    # the group's column p_a_population was the population's too: the report failed after every fit on pandas'
    # "columns overlap" (see test_report.py); the CLI reads the group column's values before fitting anything
    import accord.aggregate
    from accord.datasets.synthetic import make_synthetic

    def no_fit(name, **settings):
        raise AssertionError(f"{name} was fitted before the group was refused")

    monkeypatch.setattr(accord.aggregate, "make_method", no_fit)  # cmd_report imports it from there
    table = make_synthetic(n_pairs=12, n_annotators=4, judgments_per_pair=3, n_groups=2, seed=0).judgments
    first = table["annotator_group"] == table["annotator_group"].iloc[0]
    table = table.assign(annotator_group=first.map({True: "population", False: "others"}))
    source = tmp_path / "judgments.csv"
    table.to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--methods", "majority", "--group", "annotator_group",
                   "--output-dir", str(tmp_path / "report"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "group 'population' gives the columns p_a_population" in err, err
    assert not (tmp_path / "report").exists()


def test_version_flag_prints_the_package_version(capsys):
    """``accord --version`` was "the following arguments are required: command", exit 2."""
    from accord import __version__

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"accord {__version__}"


def test_aggregate_says_where_it_wrote_the_annotator_table(tmp_path, capsys):
    """The annotator table was written without a line saying so (the soft labels had theirs)."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    raters = tmp_path / "raters.csv"
    assert main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--output",
                 str(tmp_path / "soft.csv"), "--annotators", str(raters), "--quiet"]) == 0
    out = capsys.readouterr().out
    n_raters = len(pd.read_csv(raters))
    assert f"wrote {raters} (annotator table, {n_raters} annotators)" in out, out


def test_a_perfect_gold_score_prints_no_negative_zero(tmp_path, capsys):
    """Every pair's gold label at probability 1 printed 'NLL -0.000' (the mean of -log 1 is -0.0)."""
    judgments = pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["w1", "w2", "w1"],
                              "label": ["A", "A", "B"]})
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    judgments.to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1", "p2"], "gold": ["A", "B"]}).to_csv(gold, index=False)
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority", "--output",
                 str(tmp_path / "soft.csv")]) == 0
    out = capsys.readouterr().out
    assert "accuracy 1.000" in out and "NLL 0.000" in out and "-0.000" not in out, out


def test_a_gold_file_over_judgments_with_their_own_gold_says_it_replaces_them(tmp_path, capsys):
    """Judgments with a gold column (a named dataset's, or the user's) and --gold: the file's labels replaced the
    column's without a word, here 3 pairs with gold becoming 1 (scored against another label)."""
    judgments = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3"], "annotator": ["w1", "w2"] * 2 + ["w1"],
                              "label": ["A", "A", "B", "B", "A"], "gold": ["A", "A", "B", "B", "A"]})
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    judgments.to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1"], "gold": ["B"]}).to_csv(gold, index=False)
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority", "--output",
                 str(tmp_path / "soft.csv")]) == 0
    out = capsys.readouterr().out
    assert "gold: 1 of 3 pairs has a gold label" in out and "against gold (1 item)" in out, out
    assert f"{gold} replaces the judgments' own column 'gold' (3 pairs had a gold label there)" in out, out


def test_distributed_without_inference_names_the_flag_before_reading(tmp_path, capsys, monkeypatch):
    """`--distributed` with hierarchical-dawid-skene (whose own default inference is not vb) and no --inference
    failed in the fit, after reading the input, with a line naming no flag."""
    import accord.datasets.stream as stream

    source = tmp_path / "judgments.parquet"
    GOOD.to_parquet(source)
    read = []
    monkeypatch.setattr(stream, "read_judgment_shard", lambda *a, **k: read.append(a) or pytest.fail("read"))
    output = tmp_path / "soft.csv"
    assert main(["aggregate", "--distributed", "1", "--input", str(source), "--method", "hierarchical-dawid-skene",
                 "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accord: error: --inference: ") and "--inference vb" in err, err
    assert not read and not output.exists()
    monkeypatch.undo()
    assert main(["aggregate", "--distributed", "1", "--input", str(source), "--method", "hierarchical-dawid-skene",
                 "--inference", "vb", "--output", str(output), "--quiet"]) == 0
    assert len(pd.read_csv(output)) == GOOD["pair_id"].nunique()


@pytest.mark.parametrize("form, labels", [("graded", [-2, 1, 0, 2]), ("categorical", ["x", "y", "x", "z"])])
def test_report_group_on_judgments_that_are_not_preferences_names_the_flag_before_the_fits(form, labels, tmp_path,
                                                                                          capsys):
    # --group fits the context model, which reads A/B/tie only: the error came after every other method's fit, as
    # "judgments.csv: ContextPreference needs preference judgments", naming no flag
    source = tmp_path / "judgments.csv"
    GOOD.assign(label=labels, stance=["x", "y", "x", "y"]).to_csv(source, index=False)
    status = main(["report", "--input", str(source), "--form", form, *(["--scale", "2"] * (form == "graded")),
                   "--group", "stance", "--methods", "majority", "--output-dir", str(tmp_path / "r"), "--quiet"])
    captured = capsys.readouterr()
    assert status == 2 and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"accord: error: --group stance: the context model reads preference judgments "
                                   f"(A/B/tie), not {form} labels"), captured.err
    assert "fitted" not in captured.out and not (tmp_path / "r").exists()


def test_report_limit_pairs_counts_the_gold_labels_of_the_pairs_kept(tmp_path, capsys):
    """``accord report --limit-pairs N --gold FILE`` said how many pairs of the whole input had a gold label
    ('gold: 4 of 4 pairs') while the report read only the first N pairs. Now it counts the pairs kept."""
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(4) for _ in range(2)],
                          "annotator": ["w1", "w2"] * 4, "label": ["A", "B", "B", "B", "A", "A", "B", "A"]})
    table.to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1", "p2", "p3"], "gold": ["B", "A", "B"]}).to_csv(gold, index=False)
    status = main(["report", "--input", str(source), "--gold", str(gold), "--limit-pairs", "3", "--methods",
                   "majority", "--output-dir", str(tmp_path / "report"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 0 and "gold: 2 of 3 pairs " in out and "4 pairs" not in out, out
    report = (tmp_path / "report" / "report.html").read_text()
    assert "gold labels of 2 pairs" in report


def test_a_count_of_one_is_said_in_the_singular(tmp_path, capsys):
    """Every message that counts said '1 pairs', '1 items', '1 annotators', '1 solutions'. A count of 1 now takes
    the singular noun (one helper), every other count the plural."""
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    GOOD[GOOD["pair_id"] == "p1"].to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1"], "gold": ["A"]}).to_csv(gold, index=False)
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--output", str(tmp_path / "c.parquet"),
                 "--method", "dawid-skene", "--annotators", str(tmp_path / "raters.csv")]) == 0
    out = capsys.readouterr().out
    for said in ("gold: 1 of 1 pair has a gold label", "against gold (1 item)",
                 "(cleaned preference dataset, 1 pair)", "(annotator table, 2 annotators)"):
        assert said in out, (said, out)
    assert main(["aggregate", "--input", str(source), "--output", str(tmp_path / "soft.csv")]) == 0
    assert "(soft labels, 1 item)" in capsys.readouterr().out


def test_the_gold_summary_says_how_many_gold_ties_the_accuracy_leaves_out(tmp_path, capsys):
    """``accord aggregate --gold`` printed 'against gold (4 items): accuracy 0.667' where one gold label was a tie:
    the accuracy leaves gold ties out (2 of the other 3 right), NLL, Brier and ECE read all 4, and nothing said so.
    The line now names the gold ties left out of the accuracy."""
    source, gold = tmp_path / "judgments.csv", tmp_path / "gold.csv"
    pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3", "p4"], "annotator": ["w1", "w2"] * 2 + ["w1", "w1"],
                  "label": ["tie", "tie", "B", "B", "A", "B"]}).to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["p1", "p2", "p3", "p4"], "gold": ["tie", "B", "B", "B"]}).to_csv(gold, index=False)
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--output", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "against gold (4 items; the accuracy leaves out 1 gold tie): accuracy 0.667" in out, out
    pd.DataFrame({"pair_id": ["p2", "p3", "p4"], "gold": ["B", "B", "B"]}).to_csv(gold, index=False)
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--output", str(tmp_path / "s.csv")]) == 0
    assert "against gold (3 items): accuracy 0.667" in capsys.readouterr().out


def test_a_gold_class_no_rater_gave_is_scored_as_never_predicted_and_not_fitted(tmp_path, capsys):
    """Gold 'c' beside labels a/b: gold's classes were added to the model's, so --gold changed the fit (soft labels
    over a, b and c, vote-fraction's uncertainty 0.186 -> 0.213). The model's classes are the labels' now, and gold
    'c' is scored as a class never predicted: wrong in the accuracy, a finite NLL."""
    import math

    source, gold, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    pd.DataFrame({"pair_id": ["i1"] * 3 + ["i2"] * 3 + ["i3"] * 3, "annotator": ["r1", "r2", "r3"] * 3,
                  "label": ["a", "a", "b", "b", "b", "a", "a", "b", "a"]}).to_csv(source, index=False)
    pd.DataFrame({"pair_id": ["i1", "i2", "i3"], "gold": ["a", "c", "b"]}).to_csv(gold, index=False)
    plain = tmp_path / "plain.csv"
    assert main(["aggregate", "--input", str(source), "--form", "categorical", "--method", "vote-fraction",
                 "--output", str(plain), "--quiet"]) == 0
    assert main(["aggregate", "--input", str(source), "--form", "categorical", "--method", "vote-fraction",
                 "--gold", str(gold), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(output), pd.read_csv(plain))
    line = next(t for t in out.splitlines() if "against gold (3 items)" in t)
    assert "accuracy 0.333" in line, line  # i1 right, i2 (gold c) and i3 wrong
    nll = float(line.split("NLL ")[1].split()[0].rstrip(","))
    assert math.isfinite(nll) and nll > 9.0, line  # the never-predicted 'c' costs -log(1e-12) / 3


@pytest.mark.parametrize("gold", ["pair_id,gold\np1,0\np2,1\np3,0\n", "pair_id,gold\np1,yes\np2,no\np3,yes\n"])
def test_gold_sharing_no_class_with_the_labels_is_one_line(gold, tmp_path, capsys):
    """Labels neg/pos beside a gold file of 0/1 (another export's coding): every gold value became a class no rater
    gives, and the command reported accuracy 0.000 and an NLL of 14 against it, writing soft labels with two empty
    classes, instead of saying the two files do not use the same labels."""
    source, gold_file, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    pd.DataFrame({"task": ["p1", "p1", "p2", "p2", "p3", "p3"], "worker": ["w1", "w2"] * 3,
                  "label": ["neg", "neg", "pos", "neg", "pos", "pos"]}).to_csv(source, index=False)
    gold_file.write_text(gold)
    assert main(["aggregate", "--input", str(source), "--method", "dawid-skene", "--gold", str(gold_file),
                 "--output", str(output), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"file {gold_file}, column 'gold', row 0:" in err and "'neg'" in err, err
    assert not output.exists()


@pytest.mark.parametrize("command", ["aggregate", "report", "suggest"])
@pytest.mark.parametrize("flag", [("--form", "preference"), ("--scale", "0"), ("--columns", "foo=bar"),
                                  ("--duplicates", "first")])
def test_reading_flags_with_a_named_dataset_are_refused(flag, command, tmp_path, capsys):
    """A named dataset is read as stored: --form preference on Snow's 0/1 labels, --scale 0, a --columns naming no
    column or --duplicates first were dropped without a word and the command wrote soft labels of the stored form."""
    data_dir = shared_data_or_skip()
    out = ["--output-dir", str(tmp_path / "report")] if command == "report" else \
        ["--budget", "5", "--output", str(tmp_path / "next.csv")] if command == "suggest" else \
        ["--output", str(tmp_path / "soft.csv")]
    status = main([command, "--dataset", "snow2008-wsd", "--data-dir", str(data_dir), *flag, *out, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"accord: error: {flag[0]}: ") and "--dataset snow2008-wsd" in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kind, name, hint", [("parquet", "judgments.csv", ".parquet"),
                                              ("parquet", "judgments.jsonl", ".parquet"),
                                              ("gzip", "judgments.csv", "judgments.csv.gz"),
                                              ("zip", "judgments.tsv", "judgments.tsv.zip")])
def test_a_binary_file_under_a_text_suffix_is_named_for_what_it_is(kind, name, hint, tmp_path, capsys):
    """A Parquet or compressed file saved under a .csv or .jsonl name was 'not valid utf-8 text ... --encoding
    latin-1', and with that flag a parse error on line 144: the advice led away from the file's real format."""
    import gzip
    import zipfile

    source, output = tmp_path / name, tmp_path / "soft.csv"
    if kind == "parquet":
        GOOD.to_parquet(source)
    elif kind == "gzip":
        source.write_bytes(gzip.compress(GOOD.to_csv(index=False).encode()))
    else:
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("judgments.tsv", GOOD.to_csv(index=False, sep="\t"))
    for extra in ([], ["--encoding", "latin-1"]):
        status = main(["aggregate", "--input", str(source), *extra, "--output", str(output)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and f"file {source}:" in err and hint in err, err
        assert "--encoding" not in err and not output.exists()


@pytest.mark.parametrize("command", ["aggregate", "report", "suggest"])
@pytest.mark.parametrize("scale", ["0", "-2"])
def test_a_scale_below_one_names_the_flag(scale, command, tmp_path, capsys):
    """--scale 0 was 'column 'label': scale must be a positive integer (value: 0)': no file, and a column named for
    what a flag had set."""
    source = tmp_path / "graded.csv"
    pd.DataFrame({"pair_id": ["p1", "p1", "p2"], "annotator": ["w1", "w2", "w1"], "label": [1, -1, 0]}).to_csv(
        source, index=False)
    out = ["--output-dir", str(tmp_path / "report")] if command == "report" else \
        ["--budget", "2", "--output", str(tmp_path / "next.csv")] if command == "suggest" else \
        ["--output", str(tmp_path / "soft.csv")]
    status = main([command, "--input", str(source), "--scale", scale, *out, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith(f"accord: error: --scale {scale}: "), err
    assert {p.name for p in tmp_path.iterdir()} == {"graded.csv"}


@pytest.mark.parametrize("command", ["aggregate", "report", "suggest"])
def test_an_unknown_encoding_names_the_flag(command, tmp_path, capsys):
    """--encoding latin_one was 'file judgments.csv: not readable CSV: LookupError: unknown encoding: latin_one':
    the file was blamed for the flag's value."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    out = ["--output-dir", str(tmp_path / "report")] if command == "report" else \
        ["--budget", "2", "--output", str(tmp_path / "next.csv")] if command == "suggest" else \
        ["--output", str(tmp_path / "soft.csv")]
    status = main([command, "--input", str(source), "--encoding", "latin_one", *out, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("accord: error: --encoding 'latin_one': "), err
    assert {p.name for p in tmp_path.iterdir()} == {"judgments.csv"}


@pytest.mark.parametrize("command, flag, method", [("aggregate", "--method", "bradley-terry"),
                                                   ("aggregate", "--method", "context"),
                                                   ("report", "--methods", "dawid-skene,ordinal"),
                                                   ("suggest", "--method", "debiased-bradley-terry")])
def test_a_pairwise_method_on_categorical_labels_names_the_flag(command, flag, method, tmp_path, capsys):
    """A pairwise model on categorical labels failed inside the fit ('x.csv: CrowdBradleyTerry needs pairwise labels
    ...'), naming a class rather than the flag, after Pyro's import and, in report, after fitting the methods before
    it."""
    source = tmp_path / "labels.csv"
    pd.DataFrame({"task": ["t1", "t1", "t2", "t2"], "worker": ["w1", "w2"] * 2, "label": ["x", "y", "y", "z"]}).to_csv(
        source, index=False)
    out = ["--output-dir", str(tmp_path / "report")] if command == "report" else \
        ["--budget", "2", "--output", str(tmp_path / "next.csv")] if command == "suggest" else \
        ["--output", str(tmp_path / "soft.csv")]
    status = main([command, "--input", str(source), flag, method, *out, "--quiet"])
    captured = capsys.readouterr()
    name = method.split(",")[-1]
    assert status == 2 and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"accord: error: {flag} {name}: ") and "categorical" in captured.err, captured.err
    assert "fitted" not in captured.out and {p.name for p in tmp_path.iterdir()} == {"labels.csv"}


@pytest.mark.parametrize("command", [["report", "--methods", "majority", "--output-dir", "OUT"],
                                     ["suggest", "--budget", "4", "--output", "OUT.csv"]])
def test_report_and_suggest_refuse_a_step_table(command, tmp_path, capsys):
    """A step-judgments table (solution_id, step) given to report or suggest was told 'missing required column
    pair_id; --columns NAME=pair_id ...'; renamed so, its steps were pooled into one label per rater and solution
    (the 'step' column unread) without a word. Now one line saying it is a step table, which aggregate fits."""
    source = tmp_path / "steps.csv"
    _step_table(source)
    command = [str(tmp_path / part) if part.startswith("OUT") else part for part in command]
    status = main([command[0], "--input", str(source), *command[1:], "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "step-judgments table" in err and "pair_id" not in err, err
    assert not any(path.name.startswith("OUT") for path in tmp_path.iterdir())


def _form_table(form: str, folder: Path, parquet: bool = False) -> list[str]:
    """A tiny table of each input form ``accord aggregate`` routes, written to ``folder``: its --input flags."""
    if form == "steps":
        _step_table(folder / "t.csv")
    elif form == "attributes":
        _attribute_table(folder / "t.csv")
    else:
        table = {"pairs": GOOD,
                 "graded": GOOD.assign(label=[-1, 1, 0, 1]),
                 "crowd": pd.DataFrame({"task": ["t1", "t1", "t2", "t2"], "worker": ["w1", "w2", "w1", "w2"],
                                        "label": ["cat", "cat", "dog", "cat"]})}[form]
        table.to_csv(folder / "t.csv", index=False)
    path = folder / "t.csv"
    if parquet:
        path = folder / "t.parquet"
        pd.read_csv(folder / "t.csv").to_parquet(path)
    return ["--input", str(path), *(["--scale", "1"] if form == "graded" else [])]


# (form, flags, what the one line names): a flag the form does not use, or a method of another form, is refused
# naming it; --distributed (a Parquet input) refuses the forms it cannot fit, naming the form
FLAG_REFUSED = [
    *[(form, flags, flags[0]) for form in ("steps", "attributes") for flags in (
        ["--debias", "length"], ["--n-types", "2"], ["--drop-ties"], ["--inference", "map"], ["--device", "cpu"],
        ["--form", "categorical"], ["--gold", "GOLD"])],
    ("steps", ["--pairs-output", "PAIRS"], "--pairs-output"), ("steps", ["--method", "mace"], "mace"),
    ("steps", ["--method", "attribute-mean"], "attribute-mean"),
    ("attributes", ["--annotators", "ANNOTATORS"], "--annotators"), ("attributes", ["--step-labels", "binary"],
                                                                    "--step-labels"),
    ("attributes", ["--method", "dawid-skene"], "dawid-skene"), ("attributes", ["--method", "first-error"],
                                                                  "first-error"),
    *[(form, flags, flags[0] if flags[0] != "--method" else flags[1]) for form in ("pairs", "graded", "crowd")
      for flags in (["--pairs-output", "PAIRS"], ["--step-labels", "binary"], ["--method", "first-error"],
                    ["--method", "multi-attribute-ordinal"])],
    ("pairs", ["--n-types", "2", "--method", "dawid-skene"], "--n-types"),
    ("pairs", ["--debias", "length", "--method", "dawid-skene"], "--debias"),
    ("crowd", ["--method", "bradley-terry"], "--method"), ("crowd", ["--debias", "length"], "--debias"),
    ("graded", ["--method", "context"], "--method"),
    ("graded", ["--distributed", "1", "--method", "dawid-skene"], "--scale"),
    ("steps", ["--distributed", "1", "--method", "dawid-skene"], "step-judgments table"),
    ("attributes", ["--distributed", "1", "--method", "dawid-skene"], "per-attribute ratings"),
]


@pytest.mark.parametrize("form, flags, named", FLAG_REFUSED)
def test_every_form_refuses_the_flags_it_does_not_use_naming_them(form, flags, named, tmp_path, capsys):
    """The matrix of input forms x ``accord aggregate`` flags: a flag the form has no use for is refused in one line
    that names it (or the form, for a fit across processes), before anything is written."""
    source = _form_table(form, tmp_path, parquet="--distributed" in flags)
    pd.DataFrame({"pair_id": ["p1", "p2"], "gold": ["A", "B"]}).to_csv(tmp_path / "gold.csv", index=False)
    side = {"ANNOTATORS": tmp_path / "raters.csv", "PAIRS": tmp_path / "pairs.parquet", "GOLD": tmp_path / "gold.csv"}
    flags = [str(side.get(part, part)) for part in flags]
    output = tmp_path / ("soft.csv" if "--distributed" in flags else "out.parquet")
    status = main(["aggregate", *source, *flags, "--output", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and named in err, err
    assert not output.exists() and not (tmp_path / "raters.csv").exists() and not (tmp_path / "pairs.parquet").exists()


@pytest.mark.parametrize("form, flags, written", [
    ("pairs", ["--method", "majority"], ["out.parquet"]), ("graded", ["--method", "majority"], ["out.parquet"]),
    ("crowd", ["--method", "dawid-skene", "--annotators", "ANNOTATORS"], ["out.parquet", "raters.csv"]),
    ("steps", ["--method", "dawid-skene", "--annotators", "ANNOTATORS", "--step-labels", "ternary"],
     ["out.parquet", "raters.csv"]),
    ("attributes", ["--method", "attribute-mean", "--pairs-output", "PAIRS"], ["out.parquet", "pairs.parquet"]),
])
def test_every_form_does_what_its_flags_say(form, flags, written, tmp_path, capsys):
    """The accepted cells of the matrix: each form's own flags write what they name."""
    source = _form_table(form, tmp_path)
    side = {"ANNOTATORS": tmp_path / "raters.csv", "PAIRS": tmp_path / "pairs.parquet"}
    flags = [str(side.get(part, part)) for part in flags]
    assert main(["aggregate", *source, *flags, "--output", str(tmp_path / "out.parquet"), "--quiet"]) == 0
    assert all((tmp_path / name).exists() for name in written), capsys.readouterr()


def test_suggest_refuses_per_attribute_ratings_in_the_command_line_s_terms(tmp_path, capsys):
    """Per-attribute ratings given to suggest were refused with Python advice ('use
    accord.datasets.attributes.encode_attributes, or pick one attribute with select_attribute()'); now the line says
    what suggest reads, as report's does."""
    source = tmp_path / "ratings.csv"
    _attribute_table(source)
    status = main(["suggest", "--input", str(source), "--budget", "4", "--output", str(tmp_path / "b.csv"),
                   "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "per-attribute ratings" in err, err
    assert "select_attribute" not in err and not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("column, spelled", [("pair_id", "p1 "), ("pair_id", " p1"), ("annotator", "w1 ")])
def test_ids_that_differ_only_in_spaces_around_them_are_refused_naming_both_rows(column, spelled, tmp_path, capsys):
    """Was: 'p1' and Excel's 'p1 ' in one judgments file were two pairs without a word (and 'w1 ' another rater),
    while --gold matched ids with the spaces cut. Now the second spelling is one line naming its column, its row and
    the row of the first."""
    source, output = tmp_path / "judgments.csv", tmp_path / "soft.csv"
    row = 1 if column == "pair_id" else 2  # p1 by w2, p2 by w1
    GOOD.assign(**{column: GOOD[column].where(GOOD.index != row, spelled)}).to_csv(source, index=False)
    status = main(["aggregate", "--input", str(source), "--method", "majority", "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert f"column '{column}', row {row}: id {spelled!r} differs from {spelled.strip()!r} (row 0)" in err, err
    assert not output.exists()


def test_a_gold_value_that_differs_from_a_label_only_in_spaces_is_refused_as_in_the_judgments(tmp_path, capsys):
    """Was: a gold file's 'A ' was cut to 'A' and scored, while the same cell in the judgments was refused (labels
    are matched exactly). Now the gold value is read as written and refused in one line naming its file, column and
    row; a gold file written as the judgments are still scores."""
    source, gold, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    GOOD.to_csv(source, index=False)
    gold.write_text('pair_id,gold\np1,B\np2,"A "\n')
    status = main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority",
                   "--output", str(output)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert f"file {gold}, column 'gold', row 1: gold value 'A ' differs from the label 'A' only in spaces" in err
    assert not output.exists()
    gold.write_text('pair_id,gold\np1,B\np2,A\n')
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority",
                 "--output", str(output)]) == 0


def test_a_categorical_gold_value_with_spaces_matches_the_class_written_so(tmp_path, capsys):
    """Was: gold 'pos ' was cut to 'pos', so a crowd-kit table whose class is 'pos ' scored its right answer as wrong
    (accuracy 0.500 of 1.000)."""
    source, gold, output = tmp_path / "judgments.csv", tmp_path / "gold.csv", tmp_path / "soft.csv"
    source.write_text("task,worker,label\np1,r1,pos \np1,r2,pos \np2,r1,neg\np2,r2,neg\n")
    gold.write_text('task,gold\np1,pos \np2,neg\n')
    assert main(["aggregate", "--input", str(source), "--gold", str(gold), "--method", "majority",
                 "--output", str(output)]) == 0
    assert "against gold (2 items): accuracy 1.000" in capsys.readouterr().out


_JUMP = 1000.0  # seconds the clock jumps at a slow step: far above any fit of these four-row tables, however busy


def _clock_that_jumps(monkeypatch) -> Callable[[], None]:
    """``time.perf_counter`` made to run ``_JUMP`` seconds ahead each time the returned function is called: a step
    that calls it takes that long to any clock around it, without the test sleeping (a real sleep of a second or
    two was near a four-row fit's own time on a busy machine, and the tests failed there)."""
    import time

    real, ahead = time.perf_counter, [0.0]

    def jump() -> None:
        ahead[0] += _JUMP

    monkeypatch.setattr(time, "perf_counter", lambda: real() + ahead[0])
    return jump


@pytest.mark.parametrize("kind, method", [
    ("pairs", "majority"), ("pairs", "dawid-skene"), ("categorical", "dawid-skene"), ("graded", "majority"),
    ("steps", "majority"), ("steps", "vote-fraction"), ("steps", "dawid-skene"),
    ("attributes", "attribute-mean"),
])
def test_the_fit_time_aggregate_prints_covers_the_fit_only(kind, method, tmp_path, capsys, monkeypatch):
    """Issue #13: "fit: X s" covers the fit only. A step table's fit time took in the import of its method's module
    (2.9 s for a four-judgment table), and per-attribute ratings' the validation, the cleaned frames and their
    writing; the pairwise forms (preference, categorical, graded) imported the model before the clock already.
    Here the import of the method's module and the writing of the output each take ``_JUMP`` seconds."""
    import importlib
    import types

    import accord.aggregate.cleaned_attributes as cleaned_attributes
    import accord.aggregate.methods as methods
    import accord.aggregate.steps as steps

    jump = _clock_that_jumps(monkeypatch)

    def slow_import(name, *args, **kwargs):
        jump()
        return importlib.import_module(name, *args, **kwargs)

    slow = types.SimpleNamespace(import_module=slow_import)
    monkeypatch.setattr(methods, "importlib", slow)
    monkeypatch.setattr(steps, "importlib", slow)
    write = cleaned_attributes.write_attribute_cleaned

    def slow_write(*args, **kwargs):
        jump()
        return write(*args, **kwargs)

    monkeypatch.setattr(cleaned_attributes, "write_attribute_cleaned", slow_write)
    source = tmp_path / "judgments.csv"
    flags: list[str] = []
    if kind == "steps":
        _step_table(source)
    elif kind == "attributes":
        _attribute_table(source)
    elif kind == "categorical":
        GOOD.assign(label=["x", "y", "x", "y"]).to_csv(source, index=False)
        flags = ["--form", "categorical"]
    elif kind == "graded":
        GOOD.assign(label=[-2, 1, 0, 2]).to_csv(source, index=False)
        flags = ["--form", "graded", "--scale", "2"]
    else:
        GOOD.to_csv(source, index=False)
    output = tmp_path / ("out.parquet" if kind in ("steps", "attributes") else "soft.csv")
    assert main(["aggregate", "--input", str(source), *flags, "--method", method, "--output", str(output),
                 "--quiet"]) == 0, capsys.readouterr().err
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("method: "))
    fit = float(re.search(r"fit: ([0-9.]+)s", line).group(1))
    assert fit < _JUMP, line


@pytest.mark.parametrize("kind, method", [("pairs", "glad"), ("pairs", "bradley-terry"), ("graded", "ordinal")])
def test_the_fit_time_of_an_svi_fit_leaves_out_the_import_its_first_step_makes(kind, method, tmp_path, capsys,
                                                                               monkeypatch):
    """Issue #13: an SVI fit's first optimiser (torch.optim's constructor) imports torch._dynamo and sympy, which
    "fit: X s" took in (1.66 s for a four-judgment table, 0.82 s with it imported before). Here its first import, in
    whichever place makes it, takes ``_JUMP`` seconds, as a first import does once per process (an import
    statement asks ``__import__`` even for a module imported already)."""
    import builtins

    real_import, slept = builtins.__import__, []
    jump = _clock_that_jumps(monkeypatch)

    def slow_first_dynamo(name, *args, **kwargs):
        if name.startswith("torch._dynamo") and not slept:
            slept.append(name)
            jump()
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", slow_first_dynamo)
    source, output = tmp_path / "judgments.csv", tmp_path / "soft.csv"
    flags: list[str] = []
    if kind == "graded":
        GOOD.assign(label=[-2, 1, 0, 2]).to_csv(source, index=False)
        flags = ["--form", "graded", "--scale", "2"]
    else:
        GOOD.to_csv(source, index=False)
    assert main(["aggregate", "--input", str(source), *flags, "--method", method, "--output", str(output),
                 "--quiet"]) == 0, capsys.readouterr().err
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("method: "))
    assert slept, "the fit imported no torch._dynamo: the test no longer makes the import it is about"
    assert float(re.search(r"fit: ([0-9.]+)s", line).group(1)) < _JUMP, line


@pytest.mark.parametrize("kind", ["pairs", "pairs with gold", "attributes", "steps"])
def test_duplicates_first_or_last_says_how_many_rows_it_left_out(kind, tmp_path, capsys):
    """``--duplicates first|last`` dropped a rater's repeats and said only the fit's count (4 rows read, 'judgments:
    3'): one line now counts the rows left out, as the validator counted them (a table validated again with its
    gold keeps the count)."""
    source = tmp_path / "judgments.csv"
    if kind == "steps":
        _step_table(source)
    elif kind == "attributes":
        _attribute_table(source)
    else:
        pd.DataFrame({"pair_id": ["p1", "p2", "p2"], "annotator": ["w1", "w1", "w2"], "label": ["A", "A", "B"],
                      "response_a": ["x", "u", "u"], "response_b": ["y", "v", "v"]}).to_csv(source, index=False)
    table = pd.read_csv(source)
    n = len(table)
    pd.concat([table, table.iloc[[0, 0]]]).to_csv(source, index=False)  # the first row twice more
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"pair_id": ["p1", "p2"], "gold": ["A", "B"]}).to_csv(gold, index=False)
    extra = ["--gold", str(gold)] if kind == "pairs with gold" else []
    output = tmp_path / "out.parquet"
    for policy in ("first", "last"):
        assert main(["aggregate", "--input", str(source), "--duplicates", policy, *extra, "--output", str(output),
                     "--quiet", *(["--method", "majority"] if kind.startswith("pairs") else [])]) == 0
        out = capsys.readouterr().out
        assert f"--duplicates {policy} left out 2 rows of {n + 2:,} read" in out, out
    pd.concat([table]).to_csv(source, index=False)  # nothing repeated: nothing said
    assert main(["aggregate", "--input", str(source), "--duplicates", "first", *extra, "--output", str(output),
                 "--quiet", *(["--method", "majority"] if kind.startswith("pairs") else [])]) == 0
    assert "left out" not in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "suggest"])
def test_report_and_suggest_say_how_many_repeats_duplicates_left_out(command, tmp_path, capsys):
    # accord aggregate counted the rows --duplicates first|last left out; report and suggest, which take the same
    # flag, said nothing
    source = tmp_path / "judgments.csv"
    rows = pd.DataFrame({"pair_id": ["p1", "p1", "p2", "p2", "p3", "p3"], "annotator": ["w1", "w2"] * 3,
                         "label": ["A", "A", "B", "A", "B", "B"]})
    pd.concat([rows, rows.iloc[[0]]]).to_csv(source, index=False)
    settings = (["--methods", "majority", "--output-dir", str(tmp_path / "report")] if command == "report"
                else ["--budget", "2", "--output", str(tmp_path / "batch.csv")])
    assert main([command, "--input", str(source), "--duplicates", "last", *settings, "--quiet"]) == 0
    assert "--duplicates last left out 1 row of 7 read" in capsys.readouterr().out


def test_the_gold_line_says_how_graded_gold_is_scored_by_a_model_over_grades_and_one_over_sides(tmp_path, capsys):
    """Graded gold is scored two ways: a model over grades scores exact grades (gold 0 a grade like any other), the
    ordinal model scores sides and leaves gold 0 (a tie) out of the accuracy. The line said only the second, as if
    gold ties were left out everywhere; now each says what it scored."""
    truth, source, gold = _graded_with_gold(tmp_path)
    output = tmp_path / "soft.csv"
    zeros = sum(t == 0 for t in truth.values())
    assert zeros == 1  # the premise: one gold 0, scored by one and left out by the other
    lines = {}
    for method in ("dawid-skene", "ordinal"):
        assert main(["aggregate", "--input", str(source), "--scale", "2", "--method", method, "--gold", str(gold),
                     "--output", str(output), "--quiet"]) == 0
        lines[method] = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("against gold"))
    assert lines["dawid-skene"].startswith("against gold (12 items; the accuracy scores exact grades, gold 0 "
                                           "included): accuracy"), lines
    assert lines["ordinal"].startswith("against gold (12 items; the accuracy scores sides, leaving out 1 gold tie "
                                       "(gold 0)): accuracy"), lines


@pytest.mark.parametrize("prompts", ["one each", "none"])
def test_pairs_output_of_responses_that_share_no_prompt_names_the_flag_before_the_fit(prompts, tmp_path, capsys,
                                                                                      monkeypatch):
    """``--pairs-output`` of rated responses no two of which share a prompt (or that have no prompt): the rater model
    was fitted first (minutes on a large table), then the error named the library's keywords ("pairs_path: ... pass
    pairs="), not the flag. Now one line naming --pairs-output and the file, before the fit, and nothing written."""
    from accord.aggregate import attribute_mean

    rows = [{"response_id": f"r{r}", "annotator": f"w{w}", "attribute": "helpful", "label": (r + w) % 5,
             "scale_min": 0, "scale_max": 4, "prompt": f"q{r}", "response": f"text {r}"}
            for r in range(4) for w in range(3)]
    table = pd.DataFrame(rows)
    source = tmp_path / "ratings.csv"
    (table if prompts == "one each" else table.drop(columns="prompt")).to_csv(source, index=False)

    def fit(*args, **kwargs):
        raise AssertionError("the model was fitted")

    monkeypatch.setattr(attribute_mean.AttributeMean, "fit", fit)
    capsys.readouterr()
    status = main(["aggregate", "--input", str(source), "--method", "attribute-mean", "--output",
                   str(tmp_path / "responses.parquet"), "--pairs-output", str(tmp_path / "pairs.parquet"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith("accord: error: --pairs-output: ") and str(source) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.csv"]
    from accord.aggregate.cleaned_attributes import clean_attributes

    with pytest.raises(AccordError, match="pairs_path: there are no pairs to write"):  # the library, before the fit
        clean_attributes(pd.read_csv(source), method="attribute-mean", pairs_path=tmp_path / "pairs.parquet")


@pytest.mark.parametrize("dies", ["output", "annotators"])
def test_a_full_disk_while_aggregate_writes_is_one_line_naming_the_file_and_keeps_the_earlier_files(
        tmp_path, monkeypatch, capsys, dies):
    """Was: a full disk (ENOSPC) while `accord aggregate` wrote --output or --annotators was a pandas traceback
    ending in "OSError: [Errno 28] No space left on device", naming no file (or the temporary one). Now it is one
    line naming the file, exit 2; the earlier files stay as they were and no temporary file is left."""
    import errno

    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    output, raters = tmp_path / "out" / "soft.csv", tmp_path / "out" / "raters.csv"
    argv = ["aggregate", "--input", str(source), "--method", "dawid-skene", "--output", str(output),
            "--annotators", str(raters)]
    assert main(argv) == 0
    earlier = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    failing = {"output": output, "annotators": raters}[dies]
    written = pd.DataFrame.to_csv

    def no_space(frame, path=None, **kwargs):  # half the file, then the disk is full
        if path is None or not Path(path).name.startswith(f".{failing.name}."):
            return written(frame, path, **kwargs)
        Path(path).write_text(written(frame, None, **kwargs)[:20])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    capsys.readouterr()
    assert main(argv + ["--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"accord: error: file {failing}: cannot write it: No space left on device\n", err
    assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == earlier


@pytest.mark.parametrize("name", ["batch.csv.gz", "batch.tsv.bz2"])
def test_suggest_writes_a_compressed_table_as_aggregate_does(name, tmp_path):
    """``accord suggest --output x.csv.gz`` was refused ("unknown file type '.gz'") where ``accord aggregate
    --output`` and ``--annotators`` take it: every table output now takes the same suffixes, and it reads back."""
    source, plain, packed = tmp_path / "judgments.csv", tmp_path / name.split(".")[0], tmp_path / name
    GOOD.to_csv(source, index=False)
    plain = plain.with_suffix("." + name.split(".")[1])
    for output in (plain, packed):
        assert main(["suggest", "--input", str(source), "--method", "dawid-skene", "--budget", "2",
                     "--output", str(output)]) == 0
    sep = "\t" if ".tsv" in name else ","
    pd.testing.assert_frame_equal(pd.read_csv(packed, sep=sep), pd.read_csv(plain, sep=sep))


@pytest.mark.parametrize("command", [["datasets", "describe", "pandalm"],
                                     ["aggregate", "--dataset", "pandalm", "--method", "majority", "--output", "x.csv"]])
def test_a_data_dir_that_does_not_exist_is_one_line_naming_it(command, tmp_path, capsys, monkeypatch):
    """``accord datasets describe NAME --data-dir MISSING`` tried a download, whose error (offline) said where to put
    the files but not that the folder named does not exist: now one line naming --data-dir and the path, no download."""
    from accord.datasets.loaders import registry

    def no_download(*args, **kwargs):
        raise AssertionError("a download was tried")

    monkeypatch.setattr(registry, "fetch", no_download)
    missing = tmp_path / "no-such-folder"
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    status = main([*command, "--data-dir", str(missing)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"accord: error: --data-dir {missing}: ") and "does not exist" in err, err
    assert not missing.exists()


def test_a_half_renamed_crowdkit_file_says_how_to_mend_it(tmp_path, capsys):
    """``--columns task=pair_id`` on a crowd-kit file (task, worker, label) was refused as "both crowd-kit and accord
    column names are present", true but with no way out: the line now names the --columns that renames them all and
    says that the crowd-kit names are read without --columns; both ways then run."""
    source, output = tmp_path / "judgments.csv", tmp_path / "soft.csv"
    GOOD.rename(columns={"pair_id": "task", "annotator": "worker"}).to_csv(source, index=False)
    base = ["aggregate", "--input", str(source), "--method", "majority", "--output", str(output)]
    capsys.readouterr()
    assert main([*base, "--columns", "task=pair_id"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "both crowd-kit" in err, err
    assert "--columns task=pair_id,worker=annotator" in err and "without --columns" in err, err
    assert main([*base, "--columns", "task=pair_id,worker=annotator"]) == 0
    assert main(base) == 0


def test_report_with_context_among_the_methods_and_a_group_fits_one_context_model_of_that_group(tmp_path,
                                                                                               monkeypatch):
    """`accord report --methods context --group annotator_stance` fitted the named context model with its own group
    ('auto': annotator_group) and a second one of the stance: the group sections showed annotator_group's groups, not
    the stance asked for, and the methods table compared context with itself."""
    from accord.datasets.synthetic import make_synthetic
    from accord.models.context import ContextPreference

    fit, groups = ContextPreference.fit, []

    def short_fit(self, judgments):  # a short MAP fit: only which group it reads matters here
        self.inference, self.max_steps = "map", 30
        groups.append(self.group)
        return fit(self, judgments)

    monkeypatch.setattr(ContextPreference, "fit", short_fit)
    table = make_synthetic(n_pairs=16, n_annotators=6, judgments_per_pair=3, n_groups=2, seed=0).judgments
    stance = {a: ("pro", "con", "neutral")[i % 3] for i, a in enumerate(sorted(table["annotator"].unique()))}
    table = table.assign(annotator_stance=table["annotator"].map(stance))
    source = tmp_path / "judgments.csv"
    table.to_csv(source, index=False)
    out = tmp_path / "report"
    status = main(["report", "--input", str(source), "--methods", "majority,context", "--group", "annotator_stance",
                   "--output-dir", str(out), "--quiet"])
    assert status == 0
    assert groups == ["annotator_stance"]  # one context fit, of the group asked for
    effects = pd.read_csv(out / "group_effects.csv")
    assert set(effects["group"]) | set(effects["reference"]) <= {"pro", "con", "neutral"}
    methods = pd.read_csv(out / "methods.csv", index_col=0)
    assert list(methods.index) == ["majority", "context-preference"]


@pytest.mark.parametrize("seed", ["0", "7"])
def test_report_refuses_a_seed_that_no_method_uses(seed, tmp_path, capsys):
    """`accord report --methods majority,vote-fraction --seed 7` was taken and silently unused (its default was 0,
    so a seed given could not be told from none), where `accord aggregate` refuses --seed with a method that draws
    nothing at random; it is now one line naming the flag, exit 2, nothing written, before the input is read."""
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    out = tmp_path / "report"
    status = main(["report", "--input", str(source), "--methods", "majority,vote-fraction", "--seed", seed,
                   "--output-dir", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("accord: error: --seed: "), err
    assert "majority" in err and not out.exists()
    assert main(["report", "--input", str(source), "--methods", "majority,vote-fraction", "--output-dir", str(out),
                 "--quiet"]) == 0
    # a rater model among the methods takes it
    assert main(["report", "--input", str(source), "--methods", "majority,dawid-skene", "--seed", seed,
                 "--output-dir", str(tmp_path / "seeded"), "--quiet"]) == 0


def test_soft_labels_written_over_a_cleaned_jsonl_do_not_keep_its_provenance(tmp_path, capsys):
    """A cleaned dataset's provenance lives in a hidden sidecar beside a JSON Lines file; soft labels (or any plain
    table) written later to the same name left it there, so the new file came with the old one's method and source
    (`--method majority`, source the first input, beside another input's vote fractions)."""
    from accord.datasets.cleaned import sidecar_path

    with_texts, without = tmp_path / "with_texts.csv", tmp_path / "without.csv"
    GOOD.to_csv(with_texts, index=False)
    GOOD[["pair_id", "annotator", "label"]].to_csv(without, index=False)
    output = tmp_path / "labels.jsonl"
    assert main(["aggregate", "--input", str(with_texts), "--method", "majority", "--output", str(output),
                 "--quiet"]) == 0
    assert sidecar_path(output).exists()  # the cleaned dataset's provenance
    # outputs written together (the soft labels and --annotators) that fail keep the file and its provenance
    from accord.datasets.io import write_table, written_together

    before = output.read_bytes()
    with pytest.raises(RuntimeError):
        with written_together():
            write_table(pd.DataFrame({"x": [1]}), output)
            raise RuntimeError("the next output failed")
    assert output.read_bytes() == before and sidecar_path(output).exists()
    assert main(["aggregate", "--input", str(without), "--output", str(output), "--quiet"]) == 0
    assert "soft labels" in capsys.readouterr().out
    assert not sidecar_path(output).exists()
    assert pd.read_json(output, lines=True)["method"].eq("vote-fraction").all()


@pytest.mark.parametrize("command", ["aggregate", "report", "suggest", "demo"])
def test_every_long_running_command_takes_progress_and_no_progress_as_train_does(command, tmp_path, capsys,
                                                                                 monkeypatch):
    """Was: only train, evaluate and score took --progress/--no-progress; aggregate, report, suggest and demo (as
    calibrate and combine) refused them ('unrecognized arguments'), so a script passing train's flag failed. Now every
    long-running command takes them through one helper: --no-progress turns the fits' bars off as --quiet does,
    --progress on, and --quiet with --progress is one line (exit 2) before any work, nothing written."""
    from accord.models.dawid_skene import DawidSkene

    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    out = tmp_path / "out"
    argv = {"aggregate": ["aggregate", "--input", str(source), "--method", "dawid-skene", "--output", f"{out}.csv"],
            "report": ["report", "--input", str(source), "--methods", "dawid-skene", "--output-dir", str(out)],
            "suggest": ["suggest", "--input", str(source), "--method", "dawid-skene", "--budget", "1",
                        "--output", f"{out}.csv"],
            "demo": ["demo", "--output-dir", str(out), "--reward-steps", "0"]}[command]
    capsys.readouterr()
    assert main([*argv, "--quiet", "--progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quiet and --progress" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgments.csv"]
    if command == "demo":  # (its fits take minutes: the flags' parse and refusal above)
        return
    seen: list[bool] = []
    real = DawidSkene.fit
    monkeypatch.setattr(DawidSkene, "fit", lambda self, *a, **k: (seen.append(self.progress), real(self, *a, **k))[1])
    for flags, expected in ((["--no-progress"], False), (["--progress"], True), (["--quiet"], False)):
        seen.clear()
        assert main([*argv, *flags]) == 0, capsys.readouterr().err
        assert seen and set(seen) == {expected}, (flags, seen)


@pytest.mark.parametrize("value", [["y"], {"role": "user", "content": "y"}])
def test_a_step_text_that_is_no_text_is_one_line_naming_the_input_before_the_fit(value, tmp_path, capsys, monkeypatch):
    """Was: `accord aggregate` of a step table whose step_text held a list (or a dict) fitted the method, then stopped
    at the write with "column 'completions', row 0: every step must be a text": the output's column and row, no
    file. Now one line naming the input file, the column step_text, its row, the step and the solution, before the
    fit (exit 2, nothing written); a number is still the step's text, as written."""
    from accord.aggregate.steps import StepVoteFraction

    table = pd.DataFrame({"solution_id": ["s", "s", "t"], "step": [0, 1, 0], "annotator": ["a", "a", "a"],
                          "label": [1, 0, 1], "step_text": pd.Series(["x", value, "z"], dtype=object)})
    source = tmp_path / "steps.jsonl"
    table.to_json(source, orient="records", lines=True)
    fitted: list[int] = []
    real = StepVoteFraction.fit
    monkeypatch.setattr(StepVoteFraction, "fit", lambda self, j: (fitted.append(1), real(self, j))[1])
    output = tmp_path / "cleaned.parquet"
    capsys.readouterr()
    assert main(["aggregate", "--input", str(source), "--output", str(output), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{source}, column 'step_text', row 1: step 1 of solution 's'" in err[0], err
    assert not fitted and not output.exists()
    table["step_text"] = pd.Series(["x", 42, "z"], dtype=object)
    numbered = tmp_path / "numbered.jsonl"
    table.to_json(numbered, orient="records", lines=True)
    assert main(["aggregate", "--input", str(numbered), "--output", str(output), "--quiet"]) == 0
    assert pd.read_parquet(output)["completions"].map(list).tolist() == [["x", "42"], ["z"]]


def _unwritable_folder() -> Path:
    """A folder where no file can be made, whoever runs the tests (root ignores a folder's permissions; sysfs refuses
    new files to everyone)."""
    import os
    import tempfile

    for folder in (Path("/sys"), Path("/proc")):
        try:
            handle, name = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(handle)
        os.unlink(name)
    pytest.skip("no folder on this machine refuses a new file")


@pytest.mark.parametrize("command", [
    ["aggregate", "--method", "dawid-skene", "--output", "{bad}/clean.parquet"],
    ["aggregate", "--method", "dawid-skene", "--output", "{bad}/new/soft.csv"],
    ["aggregate", "--method", "dawid-skene", "--output", "{tmp}/clean.parquet", "--annotators", "{bad}/ann.csv"],
    ["report", "--methods", "dawid-skene", "--output-dir", "{bad}/report"],
])
def test_an_output_where_no_file_can_be_made_is_refused_before_the_fit(command, tmp_path, capsys, monkeypatch):
    """An output in a folder without write permission (or on a read-only file system) was found only when it was
    written, after the fit (minutes on a large table): one line naming the file, and the fit lost. Now one line
    naming the flag and the path, before the judgments are fitted; nothing is written."""
    import accord.aggregate as aggregate

    monkeypatch.setattr(aggregate, "make_method", lambda *_args, **_kwargs: pytest.fail("a method was fitted"))
    bad = _unwritable_folder()
    source = tmp_path / "judgments.csv"
    GOOD.to_csv(source, index=False)
    argv = [part.format(bad=bad, tmp=tmp_path) for part in command]
    status = main([argv[0], "--input", str(source), *argv[1:], "--quiet"])
    err = capsys.readouterr().err
    flag = next(part for part in argv if part.startswith("--") and str(bad) in argv[argv.index(part) + 1])
    path = argv[argv.index(flag) + 1]
    assert status == 2 and err.count("\n") == 1 and f"{flag} {path}: cannot write it" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judgments.csv"]


@pytest.mark.parametrize("column", ["truth", "gold"])
def test_a_gold_file_of_class_names_matches_the_judgments_as_written(tmp_path, capsys, column):
    """Class names "01" and "02" are read as written from the judgments; a gold file's truth column was guessed as
    numbers, so its "01" was 1 and `accord aggregate --gold` refused it ("the gold file uses other labels")."""
    judgments, gold, output = tmp_path / "j.csv", tmp_path / "g.csv", tmp_path / "soft.csv"
    judgments.write_text("task,worker,label\n1,a,01\n1,b,01\n2,a,02\n2,b,02\n3,a,NA\n3,b,NA\n")
    gold.write_text(f"task,{column}\n1,01\n2,02\n")
    assert main(["aggregate", "--input", str(judgments), "--method", "majority", "--gold", str(gold),
                 "--output", str(output)]) == 0
    assert "against gold (2 items): accuracy 1.000" in capsys.readouterr().out
    assert pd.read_csv(output).columns.tolist()[1:4] == ["p_01", "p_02", "p_NA"]
