"""accord's data layer: the judgments table, loaders, synthetic data, ``SoftLabels`` and the cleaned-dataset format.

This package imports nothing else of accord: the types that cross stage boundaries are data and live here.
"""

from accord.datasets.attribute_scores import AttributeScores
from accord.datasets.attributes import (
    attributes_from_wide,
    encode_attributes,
    is_attribute_table,
    select_attribute,
    validate_attributes,
)
from accord.datasets.cleaned_attributes import read_attribute_cleaned, write_attribute_cleaned
from accord.datasets.cleaned import CLEANED_COLUMNS, read_cleaned, weight_from_uncertainty, write_cleaned
from accord.datasets.errors import AccordError, FitError, ValidationError
from accord.datasets.io import atomic_path
from accord.datasets.loaders import (
    describe,
    list_datasets,
    load,
    load_helpsteer2_preference,
    load_helpsteer2_ratings,
    load_helpsteer3_preference,
    load_multipref,
    load_multipref_aspects,
    load_pandalm,
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
from accord.datasets.synthetic import SyntheticData, make_synthetic
from accord.datasets.synthetic_attributes import SyntheticAttributes, make_synthetic_attributes

__all__ = [
    "AccordError",
    "AttributeScores",
    "CLEANED_COLUMNS",
    "Encoded",
    "FitError",
    "PREFERENCE_LABELS",
    "SoftLabels",
    "SyntheticAttributes",
    "SyntheticData",
    "ValidationError",
    "annotator_columns",
    "attributes_from_wide",
    "encode_attributes",
    "is_attribute_table",
    "load_helpsteer2_ratings",
    "load_multipref_aspects",
    "load_summarize_axis",
    "load_ukpconvarg2",
    "select_attribute",
    "validate_attributes",
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
    "make_synthetic_attributes",
    "read_judgments",
    "read_table",
    "atomic_path",
    "encode",
    "from_crowdkit",
    "gold_labels",
    "item_columns",
    "read_attribute_cleaned",
    "read_cleaned",
    "table_info",
    "to_crowdkit",
    "validate",
    "weight_from_uncertainty",
    "write_attribute_cleaned",
    "write_cleaned",
]
