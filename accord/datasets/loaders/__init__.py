"""Loaders that turn public annotation data sets, and a user's own files, into validated judgments tables.

=====================================  ================================================================
function                               reads
=====================================  ================================================================
:func:`read_judgments`                 a user's CSV/TSV/JSONL/JSON/Parquet file (columns renamed, validated)
:func:`read_table`                     any such file as a raw DataFrame, with one-line errors
:func:`load_ukpconvarg1`               UKPConvArg1, full XML (every worker) or the Strict CSV (gold only)
:func:`load_pandalm`                   the PandaLM human test set, optionally with two AI judges
:func:`load_snow2008`                  Snow et al. 2008 RTE / TEMP / WSD (categorical, expert gold)
:func:`load_vldb17`                    VLDB 2017 truth-inference sets: product, sentiment, duck, dog
:func:`load_multipref`                 ``allenai/multipref`` from a local file or DataFrame
:func:`load_helpsteer2_preference`     ``nvidia/HelpSteer2`` preference subset (individual ratings)
:func:`load_helpsteer3_preference`     ``nvidia/HelpSteer3`` preference subset (individual ratings)
:func:`load_summarize_from_feedback`   ``openai/summarize_from_feedback`` comparisons
:func:`load_chatbot_arena`             Chatbot Arena / MT-Bench human battles (conversations or one-hot winners)
:func:`load_prm800k`                   PRM800K step labels (phase 1 and 2), as a step-judgments table
:func:`load_math_shepherd`             Math-Shepherd's automatic step labels, as a step-judgments table
:func:`load_helpsteer2_ratings`        ``nvidia/HelpSteer2`` per-attribute ratings (multi-attribute table)
:func:`load_multipref_aspects`         ``allenai/multipref`` overall and per-aspect preferences (multi-attribute)
:func:`load_summarize_axis`            ``openai/summarize_from_feedback`` axis ratings (multi-attribute)
:func:`load_ukpconvarg2`               UKPConvArg2 reasons as binary attributes of pairs (multi-attribute)
:func:`load`                           a named set from a local folder, downloading it when needed
:func:`list_datasets`, :func:`describe`  what the named sets are, and their counts
:func:`fetch`                          download a named set into the cache (sha256-verified)
=====================================  ================================================================
"""

from accord.datasets.loaders.arena import load_chatbot_arena
from accord.datasets.loaders.generic import read_judgments, read_table
from accord.datasets.loaders.hub import (
    load_helpsteer2_preference,
    load_helpsteer3_preference,
    load_multipref,
    load_summarize_from_feedback,
)
from accord.datasets.loaders.math_shepherd import load_math_shepherd
from accord.datasets.loaders.hub_attributes import (
    load_helpsteer2_ratings,
    load_multipref_aspects,
    load_summarize_axis,
)
from accord.datasets.loaders.pandalm import load_pandalm
from accord.datasets.loaders.prm800k import load_prm800k
from accord.datasets.loaders.registry import describe, fetch, list_datasets, load
from accord.datasets.loaders.snow import load_snow2008
from accord.datasets.loaders.ukp import load_ukpconvarg1
from accord.datasets.loaders.ukp2 import load_ukpconvarg2
from accord.datasets.loaders.vldb import load_vldb17

__all__ = [
    "describe",
    "fetch",
    "list_datasets",
    "load",
    "load_chatbot_arena",
    "load_helpsteer2_preference",
    "load_helpsteer2_ratings",
    "load_helpsteer3_preference",
    "load_math_shepherd",
    "load_multipref",
    "load_multipref_aspects",
    "load_pandalm",
    "load_prm800k",
    "load_snow2008",
    "load_summarize_axis",
    "load_summarize_from_feedback",
    "load_ukpconvarg1",
    "load_ukpconvarg2",
    "load_vldb17",
    "read_judgments",
    "read_table",
]
