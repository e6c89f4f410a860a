"""Every notebook runs top to bottom; a cell that raises fails the test.

The notebooks run in their smoke-test mode (``ACCORD_SMOKE_TEST=1``, the habit of Pyro's tutorials): every cell, on
a tiny subset and a few steps, so the test checks that the code runs, not what it finds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    notebook = jupytext.read(path)
    env_before = dict(os.environ)
    os.environ["ACCORD_NOTEBOOK_OUTPUT"] = str(tmp_path)  # figures and files the notebook writes go here
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["ACCORD_SMOKE_TEST"] = "1"
    try:
        client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1
