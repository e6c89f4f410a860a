"""accord's data layer: the judgments table, loaders, synthetic data, ``SoftLabels`` and the cleaned-dataset format.

This package imports nothing else of accord: the types that cross stage boundaries are data and live here.
"""

from accord.datasets.cleaned import CLEANED_COLUMNS, read_cleaned, weight_from_uncertainty, write_cleaned
from accord.datasets.errors import AccordError, FitError, ValidationError
from accord.datasets.io import atomic_path
from accord.datasets.loaders import (
    describe,
    list_datasets,
    load,
    load_helpsteer2_preference,
    load_helpsteer3_preference,
    load_math_shepherd,
    load_multipref,
    load_pandalm,
    load_prm800k,
    load_snow2008,
    load_summarize_from_feedback,
    load_ukpconvarg1,
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

__all__ = [
    "AccordError",
    "CLEANED_COLUMNS",
    "Encoded",
    "FitError",
    "PREFERENCE_LABELS",
    "SoftLabels",
    "SyntheticData",
    "ValidationError",
    "annotator_columns",
    "describe",
    "list_datasets",
    "load",
    "load_helpsteer2_preference",
    "load_helpsteer3_preference",
    "load_multipref",
    "load_pandalm",
    "load_snow2008",
    "load_summarize_from_feedback",
    "load_ukpconvarg1",
    "load_vldb17",
    "make_synthetic",
    "read_judgments",
    "read_table",
    "atomic_path",
    "encode",
    "from_crowdkit",
    "gold_labels",
    "item_columns",
    "read_cleaned",
    "table_info",
    "to_crowdkit",
    "validate",
    "weight_from_uncertainty",
    "write_cleaned",
]
# step labels (process reward models)
__all__ += ["StepLabels", "SyntheticSteps", "load_math_shepherd", "load_prm800k", "make_synthetic_steps",
            "read_cleaned_steps", "validate_steps", "write_cleaned_steps"]
