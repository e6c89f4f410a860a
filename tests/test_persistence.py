"""Persistence: a fitted rater model kept with pickle (or joblib) and used later, in another process.

What a user does to keep a fit: ``pickle.dump(model, file)``, then ``pickle.load`` in a new process, and carries on:
soft labels, the annotator table (computed on first access, so after the round trip), the ArviZ export and its
netCDF file, the held-out predictive, ``partial_fit``, :func:`accord.aggregate.suggest` and the cleaned dataset must
answer as the model would have answered in the process that fitted it. And the pickle holds each tensor's data
once: pickle writes a tensor with every byte of the storage it views, and the fitted draws are views of shared
storages, so a context model's pickle held every draw once per draw (37 times what its draws take).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from accord import models
from accord.datasets.synthetic import make_synthetic
from conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: one short setting of each rater model family (and each way of fitting the Dawid-Skene model)
FAMILIES = {
    "dawid-skene-vb": lambda: models.DawidSkene(num_samples=10),
    "dawid-skene-gibbs": lambda: models.DawidSkene(inference="gibbs", num_samples=10, num_warmup=10),
    "dawid-skene-nuts": lambda: models.DawidSkene(inference="nuts", num_samples=8, num_warmup=8, num_chains=1),
    "dawid-skene-map": lambda: models.DawidSkene(inference="map", max_steps=20),
    "one-coin": lambda: models.OneCoinDawidSkene(num_samples=10),
    "hierarchical": lambda: models.HierarchicalDawidSkene(max_steps=20, num_samples=10),
    "mace": lambda: models.MACE(max_steps=20, num_samples=10),
    "glad": lambda: models.GLAD(max_steps=20, num_samples=10),
    "crowd-bt": lambda: models.CrowdBradleyTerry(max_steps=20, num_samples=10),
    "debiased-bt": lambda: models.DebiasedBradleyTerry(max_steps=20, num_samples=10),
    "ordinal": lambda: models.OrdinalPreference(max_steps=20, num_samples=10),
    "context": lambda: models.ContextPreference(max_steps=20, posterior_steps=20, num_samples=10),
    "rater-types": lambda: models.RaterTypes(n_types=2, inference="meanfield", max_steps=20, posterior_steps=20,
                                             num_samples=10),
}
#: the families that keep posterior draws of an SVI guide or per-draw parameters (the views pickle wrote whole)
DRAW_KEEPERS = ["glad", "crowd-bt", "debiased-bt", "ordinal", "context", "rater-types"]
#: what a pickle may spend on an array beside its data (its class, shape, strides, dtype)
ARRAY_HEADER = 256


def fit(name: str, table: pd.DataFrame, **settings: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits stop unconverged; what is tested here is what they keep
        return FAMILIES[name]().set_params(**settings).fit(table)


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The fitted table, a batch of judgments for ``partial_fit``, and a table of new pairs for the predictive."""
    table = make_synthetic(30, 6, 3, tie_rate=0.1, seed=3).judgments
    first, rest = table.iloc[:70].reset_index(drop=True), table.iloc[70:].reset_index(drop=True)
    first.attrs = dict(table.attrs)
    new = make_synthetic(8, 6, 3, tie_rate=0.1, seed=9).judgments
    new["pair_id"] = "new-" + new["pair_id"].astype(str)  # new pairs: a fitted pair keeps its topic (context)
    return first, rest, new


def answers(model: Any, tables: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], folder: Path) -> dict[str, Any]:
    """Everything a user reads from a fitted model, in the order a user might (``partial_fit`` last: it refits).
    The ArviZ export is read back from its netCDF file."""
    import arviz as az

    from accord.aggregate import build_cleaned
    from accord.aggregate.suggest import suggest

    first, rest, new = tables
    out: dict[str, Any] = {"probs": model.soft_labels_.probs, "uncertainty": model.soft_labels_.uncertainty,
                           "annotators": model.annotators_}
    path = model.to_arviz().to_netcdf(str(folder / f"{type(model).__name__}-{model.inference}.nc"))
    idata = az.from_netcdf(path)
    out["idata"] = {group: ({name: array.values for name, array in getattr(idata, group).data_vars.items()},
                            {k: v for k, v in getattr(idata, group).attrs.items() if k != "created_at"})
                    for group in idata.groups()}
    out["predictive"] = model.predictive_loglik(new)
    out["suggest"] = suggest(model, 4)
    out["cleaned"] = build_cleaned(model.soft_labels_, first)
    model.partial_fit(rest)
    out["refit"] = (model.soft_labels_.probs, model.annotators_)
    return out


def assert_same(one: Any, other: Any, where: str = "") -> None:
    if isinstance(one, pd.DataFrame):
        pd.testing.assert_frame_equal(one, other, obj=where)
    elif isinstance(one, pd.Series):
        pd.testing.assert_series_equal(one, other, obj=where)
    elif isinstance(one, np.ndarray):
        np.testing.assert_array_equal(one, other, err_msg=where)
    elif isinstance(one, dict):
        assert set(one) == set(other), where
        for key in one:
            assert_same(one[key], other[key], f"{where}.{key}")
    elif isinstance(one, tuple):
        for i, (a, b) in enumerate(zip(one, other, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert one == other, where


@pytest.fixture(scope="module")
def fresh_answers(tables, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every family fitted and pickled here, then the answers of the models as fitted (read after the pickle was
    taken, so that what a fit puts off is computed after it) and of the pickles loaded in a new process (one for
    all families: starting Python with torch and Pyro costs seconds)."""
    folder = tmp_path_factory.mktemp("persist")
    fitted = {name: fit(name, tables[0]) for name in FAMILIES}
    (folder / "models.pkl").write_bytes(pickle.dumps(fitted))
    (folder / "tables.pkl").write_bytes(pickle.dumps(tables))
    (folder / "here").mkdir()
    (folder / "there").mkdir()
    here = {name: answers(model, tables, folder / "here") for name, model in fitted.items()}
    code = ("import pickle, warnings; warnings.simplefilter('ignore'); import torch; torch.set_num_threads(1); "
            "torch.manual_seed(12345)\n"
            "from test_persistence import answers\n"
            f"folder = __import__('pathlib').Path({str(folder)!r})\n"
            "fitted = pickle.loads((folder / 'models.pkl').read_bytes())\n"
            "tables = pickle.loads((folder / 'tables.pkl').read_bytes())\n"
            "out = {name: answers(model, tables, folder / 'there') for name, model in fitted.items()}\n"
            "(folder / 'answers.pkl').write_bytes(pickle.dumps(out))\n")
    path = os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parent)])  # this checkout's accord, and this file
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-3000:]
    return here, pickle.loads((folder / "answers.pkl").read_bytes())


@pytest.mark.parametrize("name", FAMILIES)
def test_a_pickled_model_answers_alike_in_a_new_process(name, fresh_answers):
    here, there = fresh_answers
    assert_same(here[name], there[name], name)


def held_bytes(state: Any) -> int:
    """What ``state`` holds in arrays, reached through containers and dataclasses: each torch storage counted once
    and whole (a view keeps all of it), each numpy array by its own bytes, and a header per array."""
    storages: set[int] = set()
    seen: set[int] = set()
    total, stack = 0, [state]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            total += ARRAY_HEADER
            storage = obj.untyped_storage() if obj.layout == torch.strided else None
            if storage is not None and storage.data_ptr() not in storages:
                storages.add(storage.data_ptr())
                total += storage.nbytes()
        elif isinstance(obj, np.ndarray):
            total += ARRAY_HEADER + obj.nbytes
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(vars(obj).values())
    return total


@pytest.mark.parametrize("name", DRAW_KEEPERS)
def test_a_pickle_holds_each_draw_once(name, tables):
    """What one more posterior draw adds to the pickle is what it adds to the arrays the model holds. Pickle wrote a
    tensor with its whole storage: each site of an SVI guide's draws (a slice of one latent draw) carried every
    site's (crowd Bradley-Terry: 13 times its draws), and the per-draw parameters of the context and rater-type
    models carried all the draws each, so those pickles grew with the square of ``num_samples``."""
    few, more = (fit(name, tables[0], num_samples=n) for n in (10, 20))
    grown = len(pickle.dumps(more)) - len(pickle.dumps(few))
    held = held_bytes(vars(more)) - held_bytes(vars(few))
    assert 0 < grown <= 1.25 * held, (grown, held)


@pytest.mark.parametrize("name", ["dawid-skene-vb", "crowd-bt", "context"])
def test_copies_of_a_fitted_model(name, tables):
    """``copy.deepcopy`` (as pickle, through the same state) gives an independent fit; ``copy.copy`` shares it, but
    not the note of the attributes still to compute: the shallow copy that computed ``annotators_`` first took it
    off the note for both, and the model it was copied from then had no ``annotators_`` (AttributeError)."""
    import copy

    model = fit(name, tables[0])
    deep, shallow = copy.deepcopy(model), copy.copy(model)
    assert shallow.__dict__.keys() == model.__dict__.keys()
    assert all(shallow.__dict__[k] is v for k, v in model.__dict__.items() if k != "_deferred")
    pd.testing.assert_frame_equal(shallow.annotators_, model.annotators_)
    pd.testing.assert_frame_equal(deep.annotators_, model.annotators_)
    deep.partial_fit(tables[1])
    assert len(deep.encoded_.items) > len(model.encoded_.items) == len(tables[0])


@pytest.mark.parametrize("name", [name for name in models.__all__ if name[0].isupper()
                                  and name not in ("RaterModel", "ConvergenceWarning")])
def test_an_unfitted_model_pickles_with_its_settings(name):
    cls = getattr(models, name)
    model = cls()
    twin = pickle.loads(pickle.dumps(model))
    assert type(twin) is cls and twin.get_params() == model.get_params() and vars(twin) == vars(model)


def test_an_export_named_after_a_column_with_a_slash_writes_netcdf(tables, tmp_path):
    """The debiasing model names its ArviZ variables after its covariates' columns; netCDF refuses a '/' in a
    name, so ``to_netcdf`` of a fit with the covariate 'item_tokens/words' failed ('Forward slashes are not
    allowed'). The '/' is written '_'; two names that then clash are an error naming the first."""
    import arviz as az

    from accord.datasets import AccordError

    table = tables[0].copy()
    table["item_tokens/words"] = table.groupby("pair_id")["response_a"].transform(lambda s: len(s.iloc[0]) % 7)
    table["item_tokens_words"] = table["item_tokens/words"] % 3
    model = models.DebiasedBradleyTerry(covariates=("item_tokens/words",), max_steps=10, num_samples=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = model.fit(table).to_arviz()
    back = az.from_netcdf(idata.to_netcdf(str(tmp_path / "debiased.nc")))
    np.testing.assert_array_equal(back.posterior["item_tokens_words_effect"].values,
                                  model.to_arviz().posterior["item_tokens_words_effect"].values)
    assert list(back.posterior["item_tokens_words_effect"].dims) == ["chain", "draw", "annotator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.set_params(covariates=("item_tokens/words", "item_tokens_words")).fit(table)
    with pytest.raises(AccordError, match="'item_tokens/words_effect'"):
        model.to_arviz()


def test_a_model_pickled_on_a_gpu_loads_on_a_machine_without_one(tables, monkeypatch):
    """A fit on a GPU kept with pickle and loaded where there is none (a notebook on a laptop): torch stopped at the
    first CUDA tensor ('Attempting to deserialize object on a CUDA device'). The fitted state now loads on the CPU,
    with a warning, and the model answers as it did. The GPU pickle is made here by tagging every tensor of the
    fitted state with the location torch writes for a CUDA tensor."""
    if torch.cuda.is_available():
        pytest.skip("the machine has the GPU the pickle names")
    model = fit("glad", tables[0])
    expected = model.soft_labels_.probs.copy(), model.predictive_loglik(tables[2])
    model.device = "cuda:0"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        packed = pickle.dumps(model)
    with pytest.warns(UserWarning, match="fitted on device 'cuda:0'.*loaded on the CPU"):
        twin = pickle.loads(packed)
    assert twin.device == "cpu"
    np.testing.assert_array_equal(twin.soft_labels_.probs, expected[0])
    np.testing.assert_array_equal(twin.predictive_loglik(tables[2]), expected[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", models.ConvergenceWarning)  # a short fit; what is tested is where it runs
        twin.partial_fit(tables[1])  # and it goes on fitting, on the CPU
    assert len(twin.encoded_.items) > len(tables[0])


def test_a_pickle_under_forced_weights_only_loading_says_what_to_do(tables, monkeypatch):
    """With TORCH_FORCE_WEIGHTS_ONLY_LOAD set, torch refuses the full load of the fitted state: the error said 'Can
    not safely load weights when explicit pickle_module is specified'; it now names the variable."""
    from accord.datasets import AccordError

    model = fit("dawid-skene-vb", tables[0])
    packed = pickle.dumps(model)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(AccordError, match="DawidSkene.*TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
        pickle.loads(packed)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0")
    np.testing.assert_array_equal(pickle.loads(packed).soft_labels_.probs, model.soft_labels_.probs)
