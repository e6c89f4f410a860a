"""The rater-model contract: settings as constructor arguments (scikit-learn's get_params / set_params / clone), and
imports that stay light (``import accord.models`` and a closed-form fit load neither Pyro nor ArviZ)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import accord.models as models
from accord.datasets import AccordError

MODELS = ["DawidSkene", "OneCoinDawidSkene", "HierarchicalDawidSkene", "MACE", "GLAD", "CrowdBradleyTerry",
          "OrdinalPreference", "ContextPreference", "RaterTypes", "DebiasedBradleyTerry"]


@pytest.mark.parametrize("name", MODELS)
def test_settings_round_trip_as_in_scikit_learn(name):
    cls = getattr(models, name)
    model = cls(seed=3, max_steps=7)
    params = model.get_params()
    assert params["seed"] == 3 and params["max_steps"] == 7 and "inference" in params
    copy = model.clone(seed=4)
    assert copy.get_params() == {**params, "seed": 4} and type(copy) is cls
    assert model.set_params(tol=1e-3).tol == 1e-3
    with pytest.raises(AccordError, match="no setting"):
        model.set_params(no_such_setting=1)
    base = pytest.importorskip("sklearn.base")
    assert base.clone(model).get_params() == model.get_params()


def test_shared_settings_are_declared_once():
    """Subclasses declare only their own settings and new defaults: the shared ones come from the two bases."""
    from accord.models.base import PyroRaterModel, RaterModel

    shared = {"inference", "max_steps", "tol", "num_samples", "seed", "device", "progress"}
    assert shared <= set(RaterModel.__dataclass_fields__)
    assert {"learning_rate", "patience", "batch_size", "rank", "num_chains"} <= set(
        PyroRaterModel.__dataclass_fields__)
    for name in MODELS:
        cls = getattr(models, name)
        own = set(cls.__dict__.get("__annotations__", {}))
        assert not own & {"seed", "device", "progress", "batch_size", "num_warmup"}, name
        # a shared setting a model redeclares is a new default only (ContextPreference's learning rate, max_steps)
        for setting in own & set(PyroRaterModel.__dataclass_fields__):
            base_field = PyroRaterModel.__dataclass_fields__[setting]
            assert cls.__dataclass_fields__[setting].type == base_field.type, (name, setting)


def test_imports_stay_light():
    code = (
        "import sys, pandas as pd\n"
        "import accord.models\n"
        "assert 'pyro' not in sys.modules and 'arviz' not in sys.modules, 'import'\n"
        "from accord.models import DawidSkene\n"
        "j = pd.DataFrame({'pair_id': ['p1', 'p1', 'p2', 'p2'], 'annotator': ['a', 'b', 'a', 'b'],\n"
        "                  'label': ['A', 'A', 'B', 'A']})\n"
        "DawidSkene(inference='vb').fit(j)\n"
        "assert 'pyro' not in sys.modules and 'arviz' not in sys.modules, 'vb fit'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_summaries_take_arrays_of_any_layout():
    """Draws from pandas often arrive as views with negative strides, which torch cannot wrap."""
    import numpy as np

    from accord.models.base import mean_and_interval, summarize_draws

    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=(20, 6))  # [draws, pairs, classes]
    flipped = probs[::-1, ::-1]
    summary = summarize_draws(flipped)
    np.testing.assert_allclose(summary.mean, flipped.mean(0) / flipped.mean(0).sum(1, keepdims=True))
    assert (summary.lower <= summary.upper).all()
    mean, lower, upper = mean_and_interval(probs[::-1, :, 0])
    np.testing.assert_allclose(mean, probs[:, :, 0].mean(0))
    assert (lower <= mean).all() and (mean <= upper).all()


def test_compare_is_the_function_whatever_was_imported_first():
    import accord.models.comparison  # noqa: F401 - binds the submodule on the package

    from accord.models import compare, heldout_loglik

    assert callable(compare) and callable(heldout_loglik) and compare.__name__ == "compare"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("setting", ["max_steps", "num_samples", "batch_size", "rank", "num_chains"])
def test_counts_below_one_are_one_clear_error(name, setting):
    """``num_samples=0`` crashed in torch ('cannot sample n_sample <= 0', 'size cannot be zero') after the fit,
    ``batch_size=0`` with a ZeroDivisionError, ``rank=0`` in Pyro, ``num_chains=0`` with an IndexError."""
    from accord.datasets.synthetic import make_synthetic

    cls = getattr(models, name)
    if setting not in cls().get_params():
        pytest.skip(f"{name} has no setting {setting}")
    table = make_synthetic(n_pairs=6, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    with pytest.raises(AccordError, match=f"{setting} must be a whole number >= 1"):
        cls(**{setting: 0}).fit(table)


@pytest.mark.parametrize("tol", [-1e-4, float("nan"), float("inf"), "0.01"])
def test_a_tolerance_that_is_not_a_finite_number_at_least_zero_is_refused(tol):
    """``tol < 0`` was accepted and ran every fit to ``max_steps``; NaN and inf likewise."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=6, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    with pytest.raises(AccordError, match="tol must be a finite number >= 0"):
        models.DawidSkene(tol=tol).fit(table)


#: every number-valued setting of the models (shared and model-specific), with a value outside its domain
BAD_NUMBERS = [("learning_rate", -1.0), ("learning_rate", float("nan")), ("init_scale", float("inf")),
               ("init_scale", -1.0), ("final_lr_fraction", float("nan")), ("final_lr_fraction", 2.0),
               ("class_prior", float("inf")), ("prior_correct", float("nan")), ("prior_error", float("inf")),
               ("prior_scale", float("nan")), ("prior_error_logit", float("inf")), ("spam_prior", (2.0, float("nan"))),
               ("spam_label_concentration", float("inf")), ("ability_prior", (1.0, float("inf"))),
               ("log_beta_prior", (float("nan"), 1.0)), ("class_ability_scale", float("inf")),
               ("effect_df", float("inf")), ("collinear_threshold", float("nan"))]


@pytest.mark.parametrize("name", MODELS)
def test_a_number_setting_outside_its_domain_is_one_error_naming_it(name):
    """NaN fails every comparison, so checks written as ``value <= 0`` let NaN and inf through: the fit then failed
    in torch ('Expected init_scale > 0', 'cannot be converted to type float without overflow', a Cholesky error),
    blamed the data ('probabilities outside [0, 1]', 'the ELBO became nan ... check for annotators'), or finished
    (RaterTypes with any init_scale, DebiasedBradleyTerry with a NaN collinear_threshold)."""
    from accord.datasets.synthetic import make_synthetic

    cls = getattr(models, name)
    table = make_synthetic(n_pairs=8, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    cases = [(setting, value) for setting, value in BAD_NUMBERS if setting in cls().get_params()]
    assert cases
    for setting, value in cases:
        with pytest.raises(AccordError, match=f"^{setting} must be"):
            cls(**{setting: value}, max_steps=5, num_samples=2).fit(table)


@pytest.mark.parametrize("inference", ["vb", "gibbs"])
def test_batch_size_with_an_inference_that_reads_every_judgment_is_refused(inference):
    """``DawidSkene(batch_size=...)`` under closed-form VB or Gibbs was silently ignored; an SVI inference uses it."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, seed=0).judgments
    with pytest.raises(AccordError, match=f"batch_size subsamples .* inference '{inference}' reads every judgment"):
        models.DawidSkene(inference=inference, batch_size=8).fit(table)
    assert models.DawidSkene(inference="map", batch_size=8, max_steps=50).fit(table).soft_labels_ is not None


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", True])
def test_a_seed_numpy_cannot_take_is_one_error_naming_it(seed):
    """``seed=-1`` (``accord aggregate --seed -1``) or ``2**32`` failed in numpy with a raw ValueError ('Seed must be
    between 0 and 2**32 - 1', a traceback from the command line), ``1.5`` with a raw TypeError."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=6, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    with pytest.raises(AccordError, match=r"^seed must be a whole number in 0\.\.2\*\*32 - 1"):
        models.DawidSkene(seed=seed).fit(table)


def test_the_largest_seed_runs_every_nuts_chain():
    """NUTS seeds chain c with ``seed + 1000 c``: past 2**32 - 1 numpy refused it."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=6, n_annotators=4, judgments_per_pair=2, seed=0).judgments
    model = models.DawidSkene(seed=2**32 - 1, inference="nuts", num_samples=5, num_warmup=5, num_chains=2).fit(table)
    assert np.isfinite(model.soft_labels_.probs.to_numpy()).all()


@pytest.mark.parametrize("name", ["DawidSkene", "OneCoinDawidSkene", "HierarchicalDawidSkene", "MACE"])
def test_a_fitted_model_deep_copies_and_the_copy_answers_alike(name):
    """The confusion models keep their judgments as sparse CSR tensors, which torch cannot deepcopy ('Cannot access
    storage of SparseCsrTensorImpl'): ``copy.deepcopy`` of a fitted model failed."""
    import copy
    import pickle

    import pandas as pd

    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, seed=0).judgments
    model = getattr(models, name)(max_steps=10, num_samples=5).fit(table)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        pd.testing.assert_frame_equal(twin.soft_labels_.probs, model.soft_labels_.probs)
        pd.testing.assert_frame_equal(twin.annotators_, model.annotators_)
        np.testing.assert_allclose(twin.predictive_loglik(table), model.predictive_loglik(table))


def test_a_refit_keeps_nothing_of_the_previous_fit():
    """A Dawid-Skene fit by SVI then by VB kept the SVI fit's ``svi_`` / ``guide_``, shown as the VB fit's own."""
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, seed=0).judgments
    model = models.DawidSkene(inference="map", max_steps=3)
    model.fit(table)
    model.set_params(inference="vb").fit(table)
    fresh = models.DawidSkene(inference="vb").fit(table)
    assert set(vars(model)) == set(vars(fresh)) and not hasattr(model, "svi_")


def test_a_fit_that_fails_after_a_good_one_leaves_the_model_unfitted():
    """A table that passed validation but had one class stored its codes in ``encoded_`` and then failed, leaving the
    previous fit's ``soft_labels_`` beside the new table's codes (``annotators_`` then mixed the two)."""
    import pandas as pd

    from accord.datasets import validate
    from accord.datasets.synthetic import make_synthetic

    table = make_synthetic(n_pairs=30, n_annotators=6, judgments_per_pair=3, seed=0).judgments
    one_class = validate(pd.DataFrame({"pair_id": ["x", "y"], "annotator": ["a", "b"], "label": ["cat", "cat"]}),
                         form="categorical")
    model = models.DawidSkene().fit(table)
    with pytest.raises(AccordError, match="no other class is known"):
        model.fit(one_class)
    assert not hasattr(model, "encoded_") and not hasattr(model, "soft_labels_")
    with pytest.raises(AttributeError):
        model.annotators_
    with pytest.raises(AccordError, match="not fitted"):
        model.to_arviz()


@pytest.mark.parametrize("name", ["majority", "vote-fraction"])
def test_the_baselines_have_the_settings_habits_of_the_rater_models(name):
    """``make_method('majority')`` and ``'vote-fraction'`` had no get_params / set_params: ``sklearn.base.clone``
    refused them ('does not implement a get_params method') while every other method of the registry took it."""
    from accord.aggregate.methods import make_method

    model = make_method(name)
    params = model.get_params()
    assert params == ({"prior": 0.5} if name == "vote-fraction" else {})
    assert model.set_params(**params).get_params() == params and repr(model).startswith(type(model).__name__ + "(")
    with pytest.raises(AccordError, match="no setting 'unknown'"):
        model.set_params(unknown=1)
    assert model.clone().get_params() == params and not hasattr(model.clone(), "soft_labels_")
    base = pytest.importorskip("sklearn.base")
    assert type(base.clone(model)) is type(model) and base.clone(model).get_params() == params


def test_the_step_and_attribute_models_refuse_a_validated_table_filtered_to_no_rows():
    """A validated table keeps its attrs when filtered; filtered to no rows it skipped validation, and the fit failed
    in torch or numpy ('max(): Expected reduction dim', 'zero-size array to reduction operation maximum')."""
    from accord.datasets import ValidationError
    from accord.datasets.steps.synthetic import make_synthetic_steps
    from accord.datasets.synthetic_attributes import make_synthetic_attributes
    from accord.models.first_error import FirstErrorModel
    from accord.models.multi_attribute import MultiAttributeOrdinal

    steps = make_synthetic_steps(n_problems=10, seed=0).judgments
    with pytest.raises(ValidationError, match="table is empty"):
        FirstErrorModel(max_iter=5).fit(steps.iloc[:0])
    scores = make_synthetic_attributes(n_responses=10, n_raters=6, seed=0).judgments
    with pytest.raises(ValidationError, match="table is empty"):
        MultiAttributeOrdinal(max_iter=5).fit(scores.iloc[:0])


@pytest.mark.parametrize("method", ["dawid-skene", "mace", "bradley-terry", "majority", "vote-fraction"])
def test_the_rater_models_refuse_a_validated_table_filtered_to_no_rows(method: str):
    """The same for preference judgments: Dawid-Skene fitted nothing (numpy's divide warnings, a soft-label table of
    no rows), MACE failed in torch ('index_add_(): self (Double) and source (Float)'), crowd Bradley-Terry with a
    ZeroDivisionError."""
    from accord.aggregate import make_method
    from accord.datasets import ValidationError, validate
    from accord.datasets.synthetic import make_synthetic

    table = validate(make_synthetic(n_pairs=20, n_annotators=5, seed=0).judgments)
    with pytest.raises(ValidationError, match="judgments table is empty"):
        make_method(method).fit(table.iloc[:0])


def test_a_first_error_fit_that_fails_keeps_the_previous_fit_whole(monkeypatch):
    """``FirstErrorModel.fit`` stored the new table's ``encoded_`` before its VB loop: a fit that then failed (a
    non-finite bound) left the new codes beside the previous fit's ``step_labels_`` and ``annotators_``."""
    import accord.models.first_error as first_error
    from accord.datasets import FitError
    from accord.datasets.steps.synthetic import make_synthetic_steps

    model = first_error.FirstErrorModel(max_iter=5).fit(make_synthetic_steps(n_problems=10, seed=0).judgments)
    encoded = model.encoded_

    def fail(*args, **kwargs):
        raise FitError("first-error model: the evidence lower bound is not finite")

    monkeypatch.setattr(first_error, "fit_polya_prior", fail)
    with pytest.raises(FitError):
        model.fit(make_synthetic_steps(n_problems=12, seed=1).judgments)
    assert model.encoded_ is encoded


STEP_AND_ATTRIBUTE_MODELS = [
    ("accord.models.first_error", "FirstErrorModel", {"seed": 3, "max_iter": 7}),
    ("accord.models.step_dawid_skene", "StepDawidSkene", {"estimator": None}),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", {"nodes": 5, "max_iter": 7}),
    ("accord.aggregate.attribute_mean", "AttributeMean", {"interval": 0.8}),
    ("accord.aggregate.steps", "StepMajorityVote", {}),
    ("accord.aggregate.steps", "StepVoteFraction", {}),
]


@pytest.mark.parametrize("module, name, settings", STEP_AND_ATTRIBUTE_MODELS)
def test_the_step_and_attribute_models_have_the_settings_habits_of_the_rater_models(module, name, settings):
    """The step models and the attribute models had no get_params / set_params / clone: ``sklearn.base.clone``
    refused them ('does not implement a get_params method') while the rater models and the baselines took it."""
    import importlib

    cls = getattr(importlib.import_module(module), name)
    model = cls(**settings)
    params = model.get_params()
    assert {k: params[k] for k in settings} == settings
    assert model.set_params(**settings).get_params() == params
    with pytest.raises(AccordError, match=f"{name} has no setting 'unknown'"):
        model.set_params(unknown=1)
    copy = model.clone()
    assert type(copy) is cls and copy is not model and copy.get_params() == params
    base = pytest.importorskip("sklearn.base")
    assert type(base.clone(model)) is cls and base.clone(model).get_params() == params


def test_sklearn_clone_of_step_dawid_skene_copies_its_estimator():
    """``StepDawidSkene`` wraps an unfitted Dawid-Skene; ``sklearn.base.clone`` clones it (with its settings) too."""
    base = pytest.importorskip("sklearn.base")
    from accord.models.step_dawid_skene import StepDawidSkene

    model = StepDawidSkene(models.DawidSkene(seed=5, max_steps=9))
    copy = base.clone(model)
    assert copy.estimator is not model.estimator
    assert copy.estimator.get_params() == model.estimator.get_params()


@pytest.mark.parametrize("name, setting, value, message", [
    ("CrowdBradleyTerry", "link", "bogus", "link must be one of"),
    ("CrowdBradleyTerry", "ties", "bogus", "ties must be one of"),
    ("OrdinalPreference", "latent", "bogus", "latent must be one of"),
    ("ContextPreference", "labels", "bogus", "labels must be one of"),
    ("ContextPreference", "utilities", "maybe", "utilities must be True, False or 'auto'"),
    ("DebiasedBradleyTerry", "covariates", "length", "covariates must be a sequence of names"),
    ("DebiasedBradleyTerry", "collinear_threshold", 2.0, "collinear_threshold must be"),
])
def test_set_params_checks_a_setting_as_the_constructor_does(name, setting, value, message):
    """A setting the constructor (``__post_init__``) refuses was taken by ``set_params`` and refused only at the next
    fit (or, for some, never: the fit read it as another value); it is now refused at once, naming the setting, and
    the model keeps the settings it had."""
    _refused_at_once(getattr(models, name), setting, value, message)


def _refused_at_once(cls: type, setting: str, value: object, message: str) -> None:
    """The constructor and ``set_params`` both refuse ``setting=value`` (naming it by ``message``), and a model whose
    ``set_params`` refused it keeps the settings it had."""
    with pytest.raises(AccordError, match=message):
        cls(**{setting: value})
    model = cls()
    before = model.get_params()
    with pytest.raises(AccordError, match=message):
        model.set_params(**{setting: value})
    assert model.get_params() == before


def test_set_params_checks_the_settings_together():
    """Settings checked against each other are checked with all the new values: link and ties set at once pass where
    either alone would be refused, and a later change that breaks the pair is refused."""
    model = models.CrowdBradleyTerry(ties="davidson")
    with pytest.raises(AccordError, match="Davidson ties have no probit form"):
        model.set_params(link="probit")
    assert model.link == "logit"
    model.set_params(link="probit", ties="rao-kupper")
    assert (model.link, model.ties) == ("probit", "rao-kupper")


def test_set_params_normalises_a_setting_as_the_constructor_does():
    """``RaterTypes`` keeps ``candidates`` as a tuple (a list from the constructor is turned into one, so that two
    models with the same settings compare equal in ``get_params``); ``set_params`` kept the list."""
    model = models.RaterTypes()
    assert model.set_params(candidates=[1, 2]).candidates == models.RaterTypes(candidates=[1, 2]).candidates == (1, 2)


@pytest.mark.parametrize("device", ["nope", "cuda:99", "gpu", 0.5])
@pytest.mark.parametrize("name", ["DawidSkene", "CrowdBradleyTerry", "MultiAttributeOrdinal"])
def test_a_device_torch_cannot_use_is_one_error_naming_the_setting(name, device):
    """A misspelt device failed deep in the fit with torch's RuntimeError ('Expected one of cpu, cuda, ... device
    type at start of device string'), a CUDA device that the machine lacks with 'Torch not compiled with CUDA
    enabled' (an AssertionError); both are now one AccordError naming the setting, before any work."""
    from accord.datasets.synthetic import make_synthetic
    from accord.datasets.synthetic_attributes import make_synthetic_attributes
    from accord.models.multi_attribute import MultiAttributeOrdinal

    if name == "MultiAttributeOrdinal":
        model, table = MultiAttributeOrdinal(device=device), make_synthetic_attributes(6, 4, 2, seed=0).judgments
    else:
        model = getattr(models, name)(device=device)
        table = make_synthetic(n_pairs=10, n_annotators=6, seed=0).judgments
    with pytest.raises(AccordError, match="^device"):
        model.fit(table)


@pytest.mark.parametrize("module, name", [
    ("accord.models", "DawidSkene"), ("accord.models", "CrowdBradleyTerry"), ("accord.models", "MACE"),
    ("accord.aggregate.majority", "MajorityVote"), ("accord.aggregate.vote_fraction", "VoteFraction"),
    ("accord.models.first_error", "FirstErrorModel"), ("accord.models.step_dawid_skene", "StepDawidSkene"),
    ("accord.aggregate.steps", "StepMajorityVote"), ("accord.aggregate.steps", "StepVoteFraction"),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal"), ("accord.aggregate.attribute_mean", "AttributeMean"),
])
def test_fit_on_records_that_are_not_a_table_is_one_validation_error(module, name):
    """``fit([{...}, ...])`` (records, not a DataFrame) failed with "'list' object has no attribute 'attrs'" in the
    rater models, the baselines and the step models; the validators' own error names what was given."""
    import importlib

    from accord.datasets import ValidationError

    model = getattr(importlib.import_module(module), name)()
    with pytest.raises(ValidationError, match="expected a pandas DataFrame, got list"):
        model.fit([{"pair_id": "p", "annotator": "a", "label": "A"}])


def test_step_dawid_skene_refuses_an_estimator_that_is_not_a_rater_model():
    """``StepDawidSkene(estimator='dawid-skene')`` failed in the fit with "'str' object has no attribute 'fit'"."""
    from accord.datasets.steps.synthetic import make_synthetic_steps
    from accord.models.step_dawid_skene import StepDawidSkene

    with pytest.raises(AccordError, match="estimator must be an unfitted rater model.*'dawid-skene'"):
        StepDawidSkene(estimator="dawid-skene").fit(make_synthetic_steps(n_problems=5, seed=0).judgments)


@pytest.mark.parametrize("interval", ["0.9", None, True, 1.0, 0.0, float("nan")])
@pytest.mark.parametrize("module, name", [("accord.models.multi_attribute", "MultiAttributeOrdinal"),
                                          ("accord.aggregate.attribute_mean", "AttributeMean")])
def test_an_interval_that_is_not_a_probability_is_one_error(module, name, interval):
    """A text interval ('0.9', as a config file may give it) failed with "'<' not supported between instances of
    'float' and 'str'"; every value outside (0, 1) is one error naming the setting (from the constructor)."""
    import importlib

    with pytest.raises(AccordError, match="interval must be a probability in"):
        getattr(importlib.import_module(module), name)(interval=interval)


@pytest.mark.parametrize("name", ["DawidSkene", "CrowdBradleyTerry", "RaterTypes"])
def test_clone_names_an_unknown_override_as_set_params_does(name):
    """``clone(no_such_setting=1)`` was the constructor's TypeError ('unexpected keyword argument') where
    ``set_params`` names the setting in an AccordError; overrides now go through set_params."""
    model = getattr(models, name)()
    with pytest.raises(AccordError, match=f"{name} has no setting 'no_such_setting'"):
        model.clone(no_such_setting=1)
    assert model.clone(seed=5).get_params() == {**model.get_params(), "seed": 5}


@pytest.mark.parametrize("module, name, setting, value", [
    ("accord.models.first_error", "FirstErrorModel", "tol", float("nan")),
    ("accord.models.first_error", "FirstErrorModel", "prior_strength", 0.0),
    ("accord.models.first_error", "FirstErrorModel", "hazard_prior", (1.0, float("inf"))),
    ("accord.models.first_error", "FirstErrorModel", "prior_flag", (0.2, 1.5, 0.6)),
    ("accord.models.first_error", "FirstErrorModel", "max_iter", 0),
    ("accord.models.first_error", "FirstErrorModel", "max_iter", None),  # a raw TypeError from the comparison
    ("accord.models.first_error", "FirstErrorModel", "max_iter", 2.5),  # a TypeError from range() in the fit
    ("accord.models.first_error", "FirstErrorModel", "num_samples", None),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", "tol", float("nan")),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", "interval", 1.5),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", "nodes", 0),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", "max_iter", 2.5),
    ("accord.aggregate.attribute_mean", "AttributeMean", "interval", float("nan")),
    ("accord.models.step_dawid_skene", "StepDawidSkene", "estimator", "dawid-skene"),
    ("accord.aggregate.vote_fraction", "VoteFraction", "prior", -1.0),
])
def test_step_attribute_and_baseline_settings_are_refused_by_the_constructor_and_set_params(module, name, setting,
                                                                                           value):
    """These models checked their settings only at the fit: the constructor and ``set_params(tol=nan)`` took them
    without a word. Both now refuse them at once, naming the setting, and set_params keeps the settings it had."""
    import importlib

    _refused_at_once(getattr(importlib.import_module(module), name), setting, value, setting)


@pytest.mark.parametrize("module, name, settings", [
    *(("accord.models", name, {"seed": 3, "max_steps": 7, "tol": 0.5}) for name in MODELS),
    ("accord.models.multi_attribute", "MultiAttributeOrdinal", {"tol": 0.5, "nodes": 5, "device": "cuda:7"}),
    ("accord.models.first_error", "FirstErrorModel", {"tol": 0.5, "prior_flag": (0.1, 0.8, 0.5)}),
    ("accord.models.step_dawid_skene", "StepDawidSkene", {"estimator": models.DawidSkene(seed=5)}),
    ("accord.aggregate.attribute_mean", "AttributeMean", {"interval": 0.8}),
    ("accord.aggregate.vote_fraction", "VoteFraction", {"prior": 2.0}),
])
def test_the_repr_shows_the_changed_settings_in_one_form(module, name, settings):
    """``MultiAttributeOrdinal``'s repr showed four of its nine settings (not tol, nodes, interval, device) and the
    rater models' two (inference and seed): two models that fit differently printed alike. Every model's repr now
    shows the settings that differ from the defaults (scikit-learn's habit) as the constructor takes them, so that
    it reads back to a model with the same settings."""
    import importlib

    cls = getattr(importlib.import_module(module), name)
    model = cls(**settings)
    text = repr(model)
    for setting, value in settings.items():
        assert f"{setting}={value!r}" in text
    # the settings left at their defaults are not shown (the estimator's own settings are inside its repr)
    shown = text.replace(repr(settings.get("estimator")), "")
    assert shown.count("=") == len(settings), text
    namespace = {name: cls, "DawidSkene": models.DawidSkene}
    again = eval(text, namespace)  # noqa: S307 - the repr of a model built here
    assert type(again) is cls and repr(again) == text
    params = again.get_params()
    assert set(params) == set(model.get_params())
    assert all(repr(params[k]) == repr(v) for k, v in model.get_params().items())


@pytest.mark.parametrize("name", ["majority", "dawid-skene", "context", "debiased-bradley-terry"])
def test_make_method_refuses_a_setting_the_method_lacks_naming_both(name):
    """``make_method(name, unknown_setting=1)`` raised the constructor's plain TypeError ('got an unexpected keyword
    argument', or 'MajorityVote() takes no arguments'), naming neither the setting nor the method; now one
    AccordError names both and lists the method's settings, each of which it takes."""
    from accord.aggregate.methods import make_method

    with pytest.raises(AccordError, match=f"method '{name}' .*has no setting 'unknown_setting'; its settings: "):
        make_method(name, unknown_setting=1)
    model = make_method(name)
    with pytest.raises(AccordError, match="did you mean 'max_steps'" if "max_steps" in model.get_params() else "none"):
        make_method(name, max_step=1)
    for setting, value in model.get_params().items():
        assert make_method(name, **{setting: value}).get_params() == model.get_params()


BAD_SETTING_VALUES = ("x", None, [1], -1, 1.5, {"a": 1}, np.array([1.0, 2.0]), np.array(["a", "b"]))


@pytest.mark.parametrize("name", sorted(__import__("accord.aggregate.methods", fromlist=["METHODS"]).METHODS))
def test_a_setting_of_the_wrong_kind_is_refused_naming_it_never_a_raw_python_error(name):
    """Constructors failed with Python's or numpy's own error on a value of the wrong kind, naming no setting:
    RaterTypes(candidates=3) 'int object is not iterable', DebiasedBradleyTerry(collinear_threshold='x') ''<' not
    supported', and a numpy array where a word belongs (link, latent, ties, labels, utilities) 'truth value of an
    array is ambiguous'. Each value is now taken or refused with an AccordError naming the setting."""
    from accord.aggregate.methods import make_method

    for setting in make_method(name).get_params():
        for value in BAD_SETTING_VALUES:
            try:
                make_method(name, **{setting: value})
            except AccordError as error:
                assert setting in str(error), (setting, value, error)
