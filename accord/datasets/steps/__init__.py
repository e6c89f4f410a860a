"""Step-level data for process reward models: the step-judgments table, ``StepLabels``, the cleaned step dataset
and a synthetic testbed with known truth.

=====================================  =========================================================================
:func:`validate_steps`                 check a step-judgments table (``solution_id``, ``step``, ``annotator``,
                                       ``label``) and record its label set
:func:`encode_steps`                   integer codes for the step-level rater models
:class:`StepLabels`                    soft step labels and P(first error at step t), one per method
:func:`write_cleaned_steps`            the cleaned step dataset (one row per solution), written atomically
:func:`read_cleaned_steps`             ... and read back, checked
:func:`make_synthetic_steps`           arithmetic word problems, solutions with known first errors, raters
=====================================  =========================================================================
"""

from accord.datasets.steps.cleaned import (
    STEP_CLEANED_COLUMNS,
    check_cleaned_steps,
    read_cleaned_steps,
    write_cleaned_steps,
)
from accord.datasets.steps.labels import StepLabels
from accord.datasets.steps.schema import (
    ERROR_LABEL,
    STEP_COLUMNS,
    STEP_LABEL_SETS,
    EncodedSteps,
    encode_steps,
    step_label_set,
    step_table_info,
    validate_steps,
)
from accord.datasets.steps.synthetic import SyntheticSteps, make_synthetic_steps

__all__ = [
    "ERROR_LABEL",
    "STEP_CLEANED_COLUMNS",
    "STEP_COLUMNS",
    "STEP_LABEL_SETS",
    "EncodedSteps",
    "StepLabels",
    "SyntheticSteps",
    "check_cleaned_steps",
    "encode_steps",
    "make_synthetic_steps",
    "read_cleaned_steps",
    "step_label_set",
    "step_table_info",
    "validate_steps",
    "write_cleaned_steps",
]
