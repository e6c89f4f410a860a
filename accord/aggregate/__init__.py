"""Aggregation: baselines, choosing and running a rater model, the cleaned dataset, the rater report."""

from accord.aggregate.attribute_mean import AttributeMean
from accord.aggregate.cleaned import build_cleaned
from accord.aggregate.cleaned_attributes import (
    build_attribute_pairs,
    build_attribute_responses,
    clean_attributes,
)
from accord.aggregate.majority import MajorityVote
from accord.aggregate.methods import METHODS, available_methods, fit_method, make_method
from accord.aggregate.steps import (
    STEP_METHODS,
    StepMajorityVote,
    StepVoteFraction,
    build_cleaned_steps,
    fit_step_method,
    make_step_method,
)
from accord.aggregate.vote_fraction import VoteFraction

__all__ = ["METHODS", "MajorityVote", "VoteFraction", "available_methods", "build_cleaned", "fit_method", "make_method"]
# step labels (process reward models)
__all__ += ["STEP_METHODS", "StepMajorityVote", "StepVoteFraction", "build_cleaned_steps", "fit_step_method",
            "make_step_method"]
__all__ += ["AttributeMean", "build_attribute_pairs", "build_attribute_responses", "clean_attributes"]
