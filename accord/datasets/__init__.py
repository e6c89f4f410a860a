"""accord's data layer: the judgments table, loaders, synthetic data, ``SoftLabels`` and the cleaned-dataset format.

This package imports nothing else of accord: the types that cross stage boundaries are data and live here.

Names are imported on first use (PEP 562): ``import accord.datasets`` alone loads neither pandas nor pyarrow, so
the command line starts quickly; ``from accord.datasets import SoftLabels`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from accord.datasets.errors import AccordError, FitError, ValidationError

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    "AttributeScores": "accord.datasets.attribute_scores",
    **dict.fromkeys(("attributes_from_wide", "encode_attributes", "is_attribute_table", "select_attribute",
                     "validate_attributes"),
                    "accord.datasets.attributes"),
    **dict.fromkeys(("CLEANED_COLUMNS", "read_cleaned", "weight_from_uncertainty", "write_cleaned"),
                    "accord.datasets.cleaned"),
    **dict.fromkeys(("read_attribute_cleaned", "write_attribute_cleaned"),
                    "accord.datasets.cleaned_attributes"),
    "atomic_path": "accord.datasets.io",
    **dict.fromkeys(("describe", "list_datasets", "load", "load_chatbot_arena", "load_helpsteer2_preference", "load_helpsteer2_ratings",
                     "load_helpsteer3_preference", "load_math_shepherd", "load_multipref", "load_multipref_aspects",
                     "load_pandalm", "load_prm800k", "load_snow2008", "load_summarize_axis",
                     "load_summarize_from_feedback", "load_ukpconvarg1", "load_ukpconvarg2", "load_vldb17",
                     "read_judgments", "read_table"),
                    "accord.datasets.loaders"),
    **dict.fromkeys(("PREFERENCE_LABELS", "Encoded", "annotator_columns", "encode", "from_crowdkit", "gold_labels",
                     "item_columns", "table_info", "to_crowdkit", "validate"),
                    "accord.datasets.schema"),
    "SoftLabels": "accord.datasets.softlabels",
    "swap_sides": "accord.datasets.ids",
    **dict.fromkeys(("StepLabels", "SyntheticSteps", "make_synthetic_steps", "read_cleaned_steps", "validate_steps",
                     "write_cleaned_steps"),
                    "accord.datasets.steps"),
    **dict.fromkeys(("SyntheticData", "make_synthetic"),
                    "accord.datasets.synthetic"),
    **dict.fromkeys(("SyntheticAttributes", "make_synthetic_attributes"),
                    "accord.datasets.synthetic_attributes"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'accord.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # what static tools see: the same names, imported eagerly
    from accord.datasets.attribute_scores import AttributeScores
    from accord.datasets.attributes import (
        attributes_from_wide,
        encode_attributes,
        is_attribute_table,
        select_attribute,
        validate_attributes,
    )
    from accord.datasets.cleaned import CLEANED_COLUMNS, read_cleaned, weight_from_uncertainty, write_cleaned
    from accord.datasets.cleaned_attributes import read_attribute_cleaned, write_attribute_cleaned
    from accord.datasets.ids import swap_sides
    from accord.datasets.io import atomic_path
    from accord.datasets.loaders import (
        describe,
        list_datasets,
        load,
        load_chatbot_arena,
        load_helpsteer2_preference,
        load_helpsteer2_ratings,
        load_helpsteer3_preference,
        load_math_shepherd,
        load_multipref,
        load_multipref_aspects,
        load_pandalm,
        load_prm800k,
        load_snow2008,
        load_summarize_axis,
        load_summarize_from_feedback,
        load_ukpconvarg1,
        load_ukpconvarg2,
        load_vldb17,
        read_judgments,
        read_table,
    )
    from accord.datasets.schema import (
        PREFERENCE_LABELS,
        Encoded,
        annotator_columns,
        encode,
        from_crowdkit,
        gold_labels,
        item_columns,
        table_info,
        to_crowdkit,
        validate,
    )
    from accord.datasets.softlabels import SoftLabels
    from accord.datasets.steps import (
        StepLabels,
        SyntheticSteps,
        make_synthetic_steps,
        read_cleaned_steps,
        validate_steps,
        write_cleaned_steps,
    )
    from accord.datasets.synthetic import SyntheticData, make_synthetic
    from accord.datasets.synthetic_attributes import SyntheticAttributes, make_synthetic_attributes

__all__ = sorted(["AccordError", "FitError", "ValidationError", *_LAZY])
