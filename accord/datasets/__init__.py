"""accord's data layer: the judgments table, loaders, synthetic data, ``SoftLabels`` and the cleaned-dataset format.

This package imports nothing else of accord: the types that cross stage boundaries are data and live here.
"""

from accord.datasets.cleaned import CLEANED_COLUMNS, read_cleaned, weight_from_uncertainty, write_cleaned
from accord.datasets.errors import AccordError, FitError, ValidationError
from accord.datasets.io import atomic_path
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

__all__ = [
    "AccordError",
    "CLEANED_COLUMNS",
    "Encoded",
    "FitError",
    "PREFERENCE_LABELS",
    "SoftLabels",
    "ValidationError",
    "annotator_columns",
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
