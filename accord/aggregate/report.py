"""The rater report: one self-contained HTML page with PNG figures, and the same tables as CSV.

:func:`write_report` takes a judgments table and fitted models (any :class:`~accord.models.base.RaterModel` or a
baseline such as majority vote; a :class:`~accord.models.context.ContextPreference` adds group effects and the
genuine-disagreement section, a :class:`~accord.models.rater_types.RaterTypes` the rater types, a
:class:`~accord.models.debiased_bradley_terry.DebiasedBradleyTerry` each rater's pull towards its covariates) and writes
``out_dir``:

``report.html``
    The page. Figures are embedded (base64 PNG), so the file alone can be mailed or opened offline.
``figures/*.png``
    The same figures as files: ``pair_labels.png`` (how sure the labels are), ``methods.png`` (the methods side by
    side, with two or more models), ``reliability_forest.png`` (each annotator's reliability with its 90% interval, the
    numbers of ``annotators.csv``), ``confusion_matrices.png`` (least and most reliable raters), ``group_effects.png``,
    ``rater_types.png``, ``genuine_disagreement.png``, ``disagreement_split.png``, ``pulls_<covariate>.png`` (a
    debiased model: each rater's pull towards a pair covariate, those more likely pulled than not in red; a character
    of the covariate's name unsafe in a file name becomes ``_``).
``*.csv``
    ``summary.csv``, ``pairs.csv``, ``methods.csv``, ``method_agreement.csv``, ``annotators.csv``, ``flagged.csv``,
    ``confusion.csv``, ``group_effects.csv``, ``types.csv``, ``type_assignments.csv``, ``genuine_disagreement.csv``,
    ``pulls_<covariate>.csv`` (sections whose model is absent are left out).

The folder is built in a temporary sibling and renamed into place, so a crash leaves the previous report or
none, never half of one.

Pairs: the first model's soft labels; a pair is *contested* when its most likely label has probability below
:data:`CONTESTED_BELOW`. Rater sections use the first model that has an annotator table. Confusion matrices are
*soft*: rater ``j``'s row ``c`` column ``k`` counts ``sum_n P(true class of pair_n = c)`` over their judgments
labelled ``k``, so they show how a rater answers relative to the consensus whatever model produced it.

Flags, for every rater whatever their number of judgments: a rater's *agreement* is the mean consensus probability
of the labels they gave, with a 90% Jeffreys interval ``Beta(s + 1/2, n - s + 1/2)`` (``s`` the summed agreement
over their ``n`` judgments); *random agreement* is ``sum_k q_k m_k``, what answers drawn from the rater's own label
frequencies ``q`` would score against the mean consensus ``m`` of their pairs; *typical* is the median agreement of
the raters with at least ``min_judgments`` judgments. *Spammer*: the interval reaches down to random agreement and
stays below typical; *adversarial*: the interval lies wholly below random agreement (or, for models that estimate
it, the adversarial probability exceeds :data:`FLAG_THRESHOLD`).
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedFormatter, FuncFormatter

from accord.aggregate.pluralistic import (WEIGHTINGS, column_name, decompose_disagreement, group_probabilities_of,
                                          pluralistic_soft_labels)
from accord import metrics
from accord._words import counted
from accord.datasets import AccordError, encode, gold_labels, validate
from accord.datasets.cleaned import is_messages, messages_text, only_texts
from accord.datasets.io import write_table
from accord.datasets.schema import checked_info, is_validated, labels_as_classes

FLAG_THRESHOLD = 0.5
#: Rows of a soft confusion matrix with fewer expected judgments than this are drawn grey.
MIN_ROW_WEIGHT = 0.5
#: A pair is contested when its most likely label has a probability below this.
CONTESTED_BELOW = 0.6
#: Confusion matrices of more classes than this are drawn without their counts (in ``confusion.csv``): in a
#: panel of the report's size the counts of 12 classes ran into each other.
MAX_NUMBERED_CLASSES = 7
#: Class names of a confusion matrix are written upright below it when all fit in this many characters side by side.
UPRIGHT_CHARACTERS = 20


@dataclass
class _Section:
    title: str
    intro: str
    figure: str | None = None
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def write_report(
    out_dir: str | os.PathLike,
    judgments: pd.DataFrame,
    *models: Any,
    weights: str | Mapping[Any, float] = "share",
    top_n: int = 20,
    min_judgments: int = 10,
    max_forest: int = 40,
    title: str = "accord rater report",
) -> Path:
    """Write the rater report for ``judgments`` and fitted ``models`` into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Target folder (replaced atomically when it exists).
    judgments
        The judgments table the models were fitted on.
    models
        Fitted models; the first one with ``annotators_`` gives reliabilities, flags and confusion matrices.
    weights
        Population weights for the genuine-disagreement section (``"share"``, ``"equal"`` or a dict).
    top_n
        Rows shown in the HTML tables of pairs and raters (the CSVs hold all).
    min_judgments
        Raters with fewer judgments are left out of the reliability ranking and its figures (their estimates lean on
        the prior) unless fewer than two have that many; they are flagged by the same rule as everyone.
    max_forest
        At most this many rows in a forest plot: annotators (half least, half most reliable), and the largest
        group effects and covariate pulls (the CSVs hold all).
    """
    if not models:
        raise AccordError("write_report needs at least one fitted model")
    for name, value, least in (("top_n", top_n, 1), ("max_forest", max_forest, 1), ("min_judgments", min_judgments, 0)):
        _check_count(name, value, least)
    if not isinstance(title, str):  # else html.escape's AttributeError, after every figure was drawn
        raise AccordError(f"title must be text, not {title!r}")
    for model in models:
        if not hasattr(model, "soft_labels_"):
            raise AccordError(f"{type(model).__name__} is not fitted: call fit(judgments) first")
    table = judgments if is_validated(judgments) else validate(judgments)
    for model in models:
        _check_fitted_on(table, model)
    # the weights weigh the groups of a context or rater-types model: without one they were accepted and ignored
    if isinstance(weights, str) and weights not in WEIGHTINGS or not isinstance(weights, (str, Mapping)):
        raise AccordError(f"weights must be 'share', 'equal' or a dict of group weights, not {weights!r}")
    if weights != "share" and not any(hasattr(m, "group_effects_") or hasattr(m, "types_") for m in models):
        raise AccordError(f"weights {weights!r}: only a context or rater-types model has groups to weigh; pass one "
                          "among the models, or leave weights out")
    target = Path(out_dir)
    work = _work_folder(target)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes the folder private; a report is meant to be shared
    try:
        (work / "figures").mkdir()
        builder = _ReportBuilder(work, table, models, weights, top_n, min_judgments, max_forest)
        # the labels are plain text (_plain_text): a session's text.usetex (LaTeX for a paper's figures) sent them
        # to LaTeX, which failed without it installed (and reads the '_' or '%' of a name such as 'w_1' as markup)
        with matplotlib.rc_context({"text.usetex": False}):
            sections = builder.build()
        (work / "report.html").write_text(_render_page(work, title, builder.summary, sections), encoding="utf-8")
        _swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def refuse_group_named_population(groups: Iterable[Any]) -> None:
    """genuine_disagreement.csv holds the population's P(A > B) (or probability of the consensus) beside each group's
    as ``p_a_population`` (``p_consensus_population``) and ``p_a_<group>``: a group named 'population' gave the same
    name, and the report failed after the fits on pandas' 'columns overlap' (or the group's replaced the
    population's, for labels without sides). ``accord report --group`` asks before its fits."""
    for group in groups:
        if column_name(group) == "population":
            raise AccordError(f"group {str(group)!r} gives the columns p_a_population and p_consensus_population of "
                              "genuine_disagreement.csv, which hold the whole population's: rename the group")


def _check_fitted_on(table: pd.DataFrame, model: Any) -> None:
    """Refuse a model fitted on judgments these do not hold: the summary counts the table's judgments while the pairs,
    annotators and flags are the model's, so a model fitted on the whole table and reported with part of it gave a
    report at odds with itself. A model fitted on part of the table (the context model keeps the judgments with a
    group) is fine: none of its pairs or raters has more judgments in the fit than here."""
    checks = [("pair", model.soft_labels_.n_judgments, table.groupby("pair_id", sort=False).size())]
    annotators = getattr(model, "annotators_", None)
    if isinstance(annotators, pd.DataFrame) and "n_judgments" in annotators:
        checks.append(("annotator", annotators["n_judgments"], table.groupby("annotator", sort=False).size()))
    for kind, fitted, here in checks:
        here = here.reindex(fitted.index, fill_value=0).to_numpy()
        more = np.flatnonzero(fitted.to_numpy() > here)
        if len(more):
            at = int(more[0])
            raise AccordError(f"{model.method} was fitted on other judgments than these ({kind} {fitted.index[at]!r}: "
                              f"{counted(int(fitted.iloc[at]), 'judgment')} in the fit, {int(here[at])} in the "
                              "judgments given): give write_report the table the models were fitted on")


def _check_count(name: str, value: Any, least: int) -> None:
    """A row or rater count must be a whole number >= ``least``: a negative ``top_n`` went to ``DataFrame.head``,
    which then dropped that many rows from the end instead of showing that many."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise AccordError(f"{name} must be an integer >= {least}, got {value!r}")


def check_report_folder(target: Path, name: str = "folder") -> None:
    """Refuse a report folder that would not be replaced: a file (the swap would put the user's file aside and leave
    it there hidden), or a folder of other files. ``accord report`` asks before its fits (``name``: its flag)."""
    if target.exists() and not target.is_dir():
        raise AccordError(f"{name} {target}: is a file; the report is a folder")
    if target.is_dir() and not (target / "report.html").exists() and any(target.iterdir()):
        # the report replaces its folder as a whole: a folder of other files (a home folder, a data folder) would
        # be deleted with it; an earlier report (its report.html) or an empty folder is replaced
        raise AccordError(f"{name} {target}: holds files and no earlier report (report.html), and the report "
                          "replaces its whole folder; name a new or empty folder")


def _work_folder(target: Path) -> Path:
    """A private folder beside ``target`` to build the report in (:func:`check_report_folder` first), refused where
    no folder can be made."""
    check_report_folder(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as err:  # e.g. a parent that is a file, or a folder without write permission
        raise AccordError(f"folder {target}: cannot write the report there: {err.strerror or err}") from err


def _swap_into_place(work: Path, target: Path) -> None:
    """Rename ``work`` to ``target``; an existing ``target`` is moved aside first and removed after."""
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        aside.rmdir()
        os.replace(target, aside)
        try:
            os.replace(work, target)
        except BaseException:
            os.replace(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(work, target)


#: control characters other than a line break (a tab, a carriage return, a NUL in an id): no font has a glyph for
#: them, so matplotlib drew a box and warned "Glyph 9 (\t) missing from font(s)" for every figure that showed one
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    """``text`` with each control character written as its escape (a tab as ``\\t``), as Python prints it."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def _plain_text(figure: Figure) -> None:
    """Draw every text of ``figure`` as it is: annotator and pair ids are the user's, and a ``$`` in one (``"w$2"``,
    ``"$a^$"``) would otherwise switch matplotlib to math mode, garbling the label or failing the whole report; a
    control character in one is drawn as its escape (:func:`_visible`)."""
    for ax in figure.axes:  # make the tick labels now (else at draw time) so that they are switched off too
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, (FixedFormatter, FuncFormatter)):  # labels given with the ticks (set_yticks,
                # ArviZ's): the formatter writes them again at every draw, over any text set on the label itself
                axis.set_major_formatter(FuncFormatter(lambda x, pos, given=formatter: _visible(str(given(x, pos)))))
            axis.get_majorticklabels()
    for text in figure.findobj(Text):
        text.set_parse_math(False)
        text.set_text(_visible(text.get_text()))


def _graded_scoring(over_sides: bool, ties: int) -> str:
    """How graded gold is scored under a model over sides (``over_sides``) or over grades, in words."""
    if not over_sides:
        return "exact grades, gold 0 included"
    return "sides" + (f", leaving out {counted(ties, 'gold tie')} (gold 0)" if ties else "")


def _gold_ties_phrase(ties: Mapping[str, int], over_sides: Mapping[str, bool] | None = None) -> str:
    """How many gold ties each method's accuracy leaves out (its NLL and ECE read them), in words: once when all
    leave out as many. Graded gold (``over_sides``: whether each method's labels are sides) is scored two ways, and
    each method's is said: a model over grades scores exact grades, gold 0 included; one over sides (the ordinal
    model) scores sides, its gold 0 a tie left out."""
    if over_sides is not None:
        return " (" + "; ".join(f"{name} scores {_graded_scoring(over_sides[name], n)}"
                                for name, n in ties.items()) + ")"
    if not any(ties.values()):
        return ""
    if len(set(ties.values())) == 1:
        return f" (the accuracy leaves out {counted(next(iter(ties.values())), 'gold tie')})"
    return (" (the accuracy leaves out the gold ties: "
            + ", ".join(f"{counted(n, 'gold tie')} under {name}" for name, n in ties.items()) + ")")


def _file_stem(name: str) -> str:
    """``name`` (a covariate's column name) made safe as part of a file name: a ``/`` in ``item_len/chars`` would
    name a folder that is not there, and the report would fail after the fit."""
    return re.sub(r"[^\w.-]", "_", name)


#: Longest annotator id drawn as a tick label in full; the tables and CSVs keep every id whole.
MAX_LABEL = 40
#: Longest id drawn in full in a confusion matrix's title (the panel is 3.2 inches wide) and as a pair's tick label
#: in the genuine-disagreement figure
MAX_TITLE_ID = 18
MAX_PAIR_LABEL = 24


def _short_id(value: Any, width: int) -> str:
    """``value`` as text of at most ``width`` characters: a longer one keeps its start and its end around an
    ellipsis. Ids cut to their first characters without a mark read as other ids, and ids that differ only at
    their end (``rater_batch7_0001``, ``rater_batch7_0002``; ``conversation-0001-turn-1``, ``...-turn-2``) were
    drawn as one name."""
    text = str(value)
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "\u2026" + text[len(text) - tail:]


def _shorten_tick_labels(ax: Any) -> None:
    """Cut each line of the y tick labels to :data:`MAX_LABEL` characters (:func:`_short_id`): one 200-character id
    made the forest plot 2,084 pixels wide, and the page, which fits figures to its width, drew the plot itself
    about half as large."""
    labels = [text.get_text() for text in ax.get_yticklabels()]
    short = ["\n".join(_short_id(line, MAX_LABEL) for line in label.split("\n")) for label in labels]
    if short != labels:
        ax.set_yticks(ax.get_yticks(), short)


def vote_counts(pair_ids: pd.Series, labels: pd.Series, pairs: pd.Index, classes: pd.Index) -> pd.DataFrame:
    """``[pairs, classes]``: how many judgments gave each pair each class (labels outside ``classes``, pairs outside
    ``pairs`` and missing values are not counted). One count over codes: ``pd.crosstab`` called Python once per
    (pair, label) cell, 1.5 s of a 12 s report at 40k pairs."""
    rows = pd.Index(pairs).get_indexer(pair_ids)
    columns = pd.Index(classes).get_indexer(labels)
    known = (rows >= 0) & (columns >= 0)
    cells = np.bincount(rows[known] * len(classes) + columns[known], minlength=len(pairs) * len(classes))
    return pd.DataFrame(cells.reshape(len(pairs), len(classes)).astype(np.int64), index=pairs, columns=classes)


def _tight_layout(figure: Figure) -> None:
    """``figure.tight_layout()``, which draws the texts: plain ones (see :func:`_plain_text`)."""
    _plain_text(figure)
    figure.tight_layout()


class _ReportBuilder:
    def __init__(self, work: Path, table: pd.DataFrame, models: tuple[Any, ...], weights: Any, top_n: int,
                 min_judgments: int, max_forest: int) -> None:
        self.work, self.table, self.models = work, table, models
        # graded gold is scored as exact grades or as sides by model: the sections say which
        self.graded = (checked_info(table) or {}).get("form") == "graded"
        self.weights, self.top_n, self.min_judgments, self.max_forest = weights, top_n, min_judgments, max_forest
        self.rater_model = next((m for m in models if hasattr(m, "annotators_")), None)
        self.context = next((m for m in models if hasattr(m, "group_effects_")), None)
        self.types = next((m for m in models if hasattr(m, "types_")), None)
        self.debiased = next((m for m in models if hasattr(m, "covariate_scale_")), None)
        self.plural = self.context if self.context is not None else self.types
        if self.plural is not None:  # before any section is built
            refuse_group_named_population(group_probabilities_of(self.plural).groups)
        self.summary: pd.DataFrame = pd.DataFrame()

    # -- helpers ------------------------------------------------------------------------------------------

    def save_figure(self, figure: Figure, name: str) -> str:
        path = self.work / "figures" / f"{name}.png"
        _plain_text(figure)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        return name

    def save_csv(self, frame: pd.DataFrame, name: str, index: bool = True) -> None:
        # write_table quotes every field when a text holds a lone carriage return: pandas' to_csv left an id
        # "cr\rhere" unquoted, and every CSV reader took the "\r" for a line end (the row came back split in two)
        if index:  # the index as the first column, its header empty where it has no name, as to_csv wrote it
            frame = frame.reset_index(names=["" if level is None else level for level in frame.index.names],
                                      allow_duplicates=True)
        write_table(frame, self.work / f"{name}.csv")

    def annotators(self) -> pd.DataFrame:
        """The rater model's annotator table (the same core columns for every model: see ``accord.models.base``)."""
        return self.rater_model.annotators_

    def has_intervals(self) -> bool:
        """Whether the annotator table's reliabilities have intervals: a MAP fit (rater types) gives point estimates,
        which were called "posterior mean and 90% credible interval" and drawn as bars of zero width."""
        annotators = self.annotators()
        if not {"reliability_lower", "reliability_upper"} <= set(annotators.columns):
            return False
        return bool((annotators["reliability_upper"] > annotators["reliability_lower"]).any())

    def ranked(self) -> tuple[pd.DataFrame, bool]:
        """Annotators with a reliability, least reliable first, and whether they are only those with at least
        ``min_judgments`` judgments (``False`` when fewer than two have that many: then all are ranked)."""
        annotators = self.annotators()
        if "reliability" not in annotators.columns:
            return annotators.iloc[0:0], False
        counts = annotators["n_judgments"] if "n_judgments" in annotators else self.counts().reindex(annotators.index)
        keep = annotators[counts >= self.min_judgments]
        if len(keep) < 2:
            return annotators.sort_values("reliability"), False
        return keep.sort_values("reliability"), True

    def ranked_phrase(self, ranked: pd.DataFrame, filtered: bool) -> str:
        """Which annotators ``ranked`` holds, in words."""
        total = len(self.annotators())
        if filtered:
            left_out = total - len(ranked)
            return (f"the {counted(len(ranked), 'annotator')} with at least {counted(self.min_judgments, 'judgment')}"
                    + (f" ({left_out} with fewer are left out: their estimates lean on the prior)" if left_out else ""))
        if total > 1 and self.min_judgments > 1:
            return (f"all {total} annotators (fewer than two have {self.min_judgments} or more judgments, so none is "
                    "left out; with few judgments an estimate leans on the prior)")
        return f"all {total} annotators"

    def labels_as(self, classes: Any, labels: pd.Series | None = None) -> pd.Series:
        """The judgments' labels (or ``labels``, e.g. gold) in the terms of a model's ``classes``
        (:func:`~accord.datasets.schema.labels_as_classes`: grades read by a model over A/B/tie become their side).
        Compared as they were, no grade matched a class: empty votes, empty confusion matrices, no flags, and every
        pair wrong against gold."""
        return labels_as_classes(self.table, classes, self.table["label"] if labels is None else labels)

    def pair_texts(self, columns: tuple[str, ...], width: int) -> pd.DataFrame:
        """The ``columns`` the judgments have, one row per pair, cut to ``width`` characters: each the first value
        among the pair's judgments that holds one, as the cleaned dataset takes it (the first judgment's alone left
        a pair without the text its other judgments give, and a missing one read 'nan'), chat messages as the text
        a tokenizer reads them (not their Python repr); a missing text is blank."""
        present = [c for c in columns if c in self.table.columns]
        first = self.table.groupby("pair_id", sort=False)[present].first()
        return first.apply(lambda values: _shown_texts(values, width))

    def counts(self) -> pd.Series:
        return self.table.groupby("annotator", sort=False).size()

    # -- sections -----------------------------------------------------------------------------------------

    def build(self) -> list[_Section]:
        self.summary = self.summary_table()
        self.save_csv(self.summary, "summary", index=False)
        sections: list[_Section] = [self.pairs_section()]
        if len(self.models) > 1:
            sections.append(self.comparison_section())
        if self.rater_model is not None:
            sections += [self.reliability_section(), self.confusion_section(), self.flag_section()]
        else:  # the rater sections were left out without a word: the page read as if they had been lost
            names = ", ".join(f"<code>{html.escape(str(m.method))}</code>" for m in self.models)
            one = len(self.models) == 1
            sections.append(_Section("Raters", f"No reliability, confusion matrices or flags: {names} "
                                     f"{'counts' if one else 'count'} votes and {'has' if one else 'have'} no "
                                     "annotator table. Fit a rater model beside (e.g. <code>accord report --methods "
                                     "dawid-skene,majority</code>) for the rater sections."))
        if self.debiased is not None:
            sections += [self.pulls_section(name) for name in self.debiased.covariates]
        if self.context is not None:
            sections.append(self.group_section())
        if self.types is not None:
            sections.append(self.types_section())
        if self.plural is not None:
            sections += self.disagreement_sections()
        return sections

    def summary_table(self) -> pd.DataFrame:
        encoded = encode(self.table)
        rows = [
            ("judgments", encoded.n_judgments),
            ("pairs", encoded.n_items),
            ("annotators", encoded.n_workers),
            ("classes", ", ".join(str(c) for c in encoded.classes)),
            ("median judgments per pair", float(np.median(np.bincount(encoded.items)))),
            ("median judgments per annotator", float(np.median(np.bincount(encoded.workers)))),
        ]
        for model in self.models:
            inference = getattr(model, "inference", None)
            rows.append((f"model: {model.method}", f"inference={inference}" if inference else "no settings"))
        return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": str})

    def reliability_section(self) -> _Section:
        annotators = self.annotators()
        self.save_csv(annotators, "annotators")
        ranked, filtered = self.ranked()
        half = max(1, self.max_forest // 2)
        if len(ranked) > self.max_forest:
            chosen = ranked.index[:half].append(ranked.index[-half:])
            shown_text = f"the {half} least and the {half} most reliable of {self.ranked_phrase(ranked, filtered)}"
        else:
            chosen = ranked.index
            shown_text = self.ranked_phrase(ranked, filtered)
        figure = self.forest(chosen, len(ranked) - len(chosen))
        what = ("Posterior mean and 90% credible interval of each annotator's reliability" if self.has_intervals()
                else "Each annotator's reliability, a point estimate (the model's fit gives no intervals),")
        intro = (
            f"{what} under "
            f"<code>{html.escape(self.rater_model.method)}</code> (the probability that a vote is the true label). "
            f"Shown: {shown_text}, the least reliable at the top. All annotators are in <code>annotators.csv</code>."
        )
        if len(ranked) > 1 and {"reliability_lower", "reliability_upper"} <= set(ranked.columns) \
                and ranked["reliability_upper"].iloc[0] >= ranked["reliability_lower"].iloc[-1]:
            intro += (" <b>The intervals of the least and the most reliable annotator overlap: the data do not tell "
                      "them apart, so read the order as a tie.</b>")
        columns = [c for c in annotators.columns if not c.endswith(("_lower", "_upper")) or c.startswith("reliab")]
        if len(ranked) <= self.top_n:
            tables = [(f"Annotators, least reliable first ({len(ranked)})", ranked[columns])]
        else:
            k = max(1, self.top_n // 2)
            tables = [(f"The {k} least reliable annotators", ranked[columns].head(k)),
                      (f"The {k} most reliable annotators", ranked[columns].tail(k).iloc[::-1])]
        return _Section("Annotator reliability", intro, figure, tables)

    def forest(self, chosen: pd.Index, left_out: int = 0) -> str | None:
        """The reliability of the ``chosen`` annotators, least reliable at the top; ``left_out`` ranked ones between
        the least and the most reliable half are not drawn, and an empty row between the halves says so."""
        if len(chosen) == 0:
            return None
        height = 1.0 + 0.22 * (len(chosen) + bool(left_out))
        figure = Figure(figsize=(7.5, height))
        ax = figure.subplots()
        # drawn from the annotator table, so the figure shows the numbers of annotators.csv: an ArviZ forest plot
        # first exported every posterior draw and per-judgment log-likelihood (to_arviz: 4.6 s and 360 MB more peak
        # memory on UKPConvArg1's 3,815 raters) to look for a 'reliability' variable that no model's posterior has
        frame = self.annotators().loc[chosen]
        y = np.arange(len(frame))[::-1]  # the least reliable at the top
        # the halves apart, else they read as one ranking with a jump in the middle (Snow 2008 RTE: 0.73 to 0.94)
        gap = len(frame) - len(frame) // 2
        if left_out:
            y[y >= gap] += 1
        lower = frame.get("reliability_lower", frame["reliability"])
        upper = frame.get("reliability_upper", frame["reliability"])
        # the reliability is the exact posterior mean and the interval comes from float32 draws: a rater certain to
        # be right (0.99998) can sit a rounding error outside [1.0, 1.0], which matplotlib refuses as a negative bar
        below = np.maximum(frame["reliability"] - lower, 0.0)
        above = np.maximum(upper - frame["reliability"], 0.0)
        ax.errorbar(frame["reliability"], y, xerr=[below, above], fmt="o", color="tab:blue", ecolor="tab:gray",
                    capsize=2)
        ax.set_yticks(y, [str(a) for a in frame.index], fontsize=8)
        ax.set_title("Annotator reliability" + (" (90% interval)" if self.has_intervals() else
                                                 " (point estimates: no intervals)"), fontsize=11)
        if left_out:
            ax.text(0.5, gap, f"\u22ee {left_out:,} annotators not shown \u22ee", transform=ax.get_yaxis_transform(),
                    ha="center", va="center", fontsize=8, color="tab:gray")
        ax.set_xlabel("reliability")
        ax.set_xlim(0, 1)
        _shorten_tick_labels(ax)
        return self.save_figure(figure, "reliability_forest")

    def soft_confusion(self, annotator: Any) -> pd.DataFrame:
        probs = self.rater_model.soft_labels_.probs
        mine = (self.table["annotator"] == annotator).to_numpy()
        truth = probs.reindex(self.table.loc[mine, "pair_id"]).to_numpy()
        classes = list(probs.columns)
        reported = pd.Index(classes).get_indexer(self.labels_as(classes)[mine])
        matrix = np.zeros((len(classes), len(classes)))
        for k in range(len(classes)):  # a handful of classes, never a loop over judgments
            matrix[:, k] = np.nansum(truth[reported == k], axis=0)
        return pd.DataFrame(matrix, index=[f"true {c}" for c in classes], columns=[f"said {c}" for c in classes])

    def confusion_section(self) -> _Section:
        ranked, filtered = self.ranked()
        each = min(3, len(ranked) // 2) if len(ranked) > 1 else len(ranked)
        worst = list(ranked.index[:each])
        best = [a for a in ranked.index[::-1][:each] if a not in worst]
        picks = [(a, "worst") for a in worst] + [(a, "best") for a in best]
        rows = []
        columns = max(len(worst), len(best), 1)
        figure = Figure(figsize=(3.2 * columns, 6.4 if best else 3.3))
        axes = figure.subplots(2 if best else 1, columns, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        for kind, group in (("worst", worst), ("best", best)):
            for position, annotator in enumerate(group):
                matrix = self.soft_confusion(annotator)
                for true_class, row in matrix.iterrows():
                    for said, value in row.items():
                        rows.append({"annotator": annotator, "rank": kind, "true": true_class[5:], "said": said[5:],
                                     "count": float(value)})
                ax = axes[0 if kind == "worst" else 1, position]
                self.draw_confusion(ax, matrix)
                reliability = ranked.loc[annotator, "reliability"]
                place = "least" if kind == "worst" else "most"
                ax.set_title(f"{place} reliable: {_short_id(annotator, MAX_TITLE_ID)}\n"
                             f"reliability {reliability:.2f}", fontsize=9)
        _tight_layout(figure)
        confusion = pd.DataFrame(rows, columns=["annotator", "rank", "true", "said", "count"])
        self.save_csv(confusion, "confusion", index=False)
        if best:
            who = f"the {len(worst)} least (top row) and {len(best)} most reliable (bottom row)"
        else:
            who = "the one ranked annotator"
        intro = (
            f"Soft confusion matrices of {who} of {self.ranked_phrase(ranked, filtered)}: rows are the consensus "
            "class (weighted by the model's posterior), columns what the annotator said, cells expected counts"
            + (f" (not written in the cells above {MAX_NUMBERED_CLASSES} classes: see <code>confusion.csv</code>)"
               if self.rater_model.soft_labels_.probs.shape[1] > MAX_NUMBERED_CLASSES else "")
            + ". "
            f"Colour: the cell's share of its row; rows with under {MIN_ROW_WEIGHT} expected judgments are grey "
            "(too little to show a share)."
        )
        return _Section("Confusion matrices of the least and most reliable raters", intro,
                        self.save_figure(figure, "confusion_matrices") if picks else None)

    @staticmethod
    def draw_confusion(ax: Any, matrix: pd.DataFrame) -> None:
        counts = matrix.to_numpy()
        totals = counts.sum(1, keepdims=True)
        share = counts / np.maximum(totals, 1e-12)
        faint = np.broadcast_to(totals < MIN_ROW_WEIGHT, share.shape)
        ax.imshow(np.ma.masked_where(faint, share), cmap="Blues", vmin=0, vmax=1)
        ax.set_facecolor("#e6e6e6")
        for (r, c), value in np.ndenumerate(counts if len(counts) <= MAX_NUMBERED_CLASSES else np.empty((0, 0))):
            dark = share[r, c] > 0.6 and not faint[r, c]
            ax.text(c, r, f"{value:.0f}" if value >= 9.95 else f"{value:.1f}", ha="center", va="center",
                    color="white" if dark else "black", fontsize=9)
        ax.set_axis_on()
        said = [c[5:] for c in matrix.columns]
        upright = len(said) * max(len(c) for c in said) <= UPRIGHT_CHARACTERS  # else the names ran into each other
        ax.set_xticks(range(matrix.shape[1]), said, rotation=0 if upright else 90)
        ax.set_yticks(range(matrix.shape[0]), [r[5:] for r in matrix.index])
        ax.set_xlabel("said")
        ax.set_ylabel("consensus")

    def flag_section(self) -> _Section:
        annotators = self.annotators().join(self.agreement())
        low, high = annotators["agreement_lower"], annotators["agreement_upper"]
        random, typical = annotators["random_agreement"], annotators["typical_agreement"]
        spam = (low <= random) & (high < typical)
        adversarial = high < random
        if "adversarial_share" in annotators:  # the context and type models estimate it directly
            adversarial |= annotators["adversarial_share"] > FLAG_THRESHOLD
        undecided = ~spam & ~adversarial & (low <= random) & (high >= typical)
        annotators["flag"] = np.where(adversarial, "adversarial", np.where(spam, "spammer", ""))
        flagged = annotators[annotators["flag"] != ""].sort_values(["flag", "agreement"])
        self.save_csv(flagged, "flagged")
        n_spam, n_adv = int((flagged["flag"] == "spammer").sum()), int((flagged["flag"] == "adversarial").sum())
        few = int((annotators["n_judgments"] < self.min_judgments).sum()) if "n_judgments" in annotators else 0
        intro = (
            f"<b>Flagged: {n_spam} as spammer, {n_adv} as adversarial</b>, of all "
            f"{counted(len(annotators), 'annotator')}. "
            "<b>Agreement</b> is a rater's agreement with the consensus of "
            f"<code>{html.escape(self.rater_model.method)}</code> (the probability it gives the label they chose, "
            "averaged over their judgments), with a 90% interval from their number of judgments (Jeffreys); "
            "<b>random agreement</b> is what a rater who ignores the pair would score with the same label "
            f"frequencies; <b>typical</b> is the median rater's agreement ({float(typical.iloc[0]):.2f}). The rule: "
            "a rater is a <b>spammer</b> when their interval reaches down to random agreement and stays below typical "
            "agreement, <b>adversarial</b> when it lies wholly below random agreement"
            + (f" or the model's adversarial probability exceeds {FLAG_THRESHOLD}" if "adversarial_share" in annotators
               else "")
            + f". The rule applies to raters with few judgments too; {counted(int(undecided.sum()), 'rater')} "
            + ("has an interval" if int(undecided.sum()) == 1 else "have intervals")
            + " too wide to tell a spammer from a typical rater"
            + (f" ({counted(few, 'annotator')} {'has' if few == 1 else 'have'} fewer than "
               f"{counted(self.min_judgments, 'judgment')})" if few else "")
            + ". The consensus includes each rater's own votes, which lifts a spammer's agreement where pairs have "
            "few judgments: a rater just above the line deserves a look too. All flags are in "
            "<code>flagged.csv</code>; the model's own <code>spam</code> estimate is shown beside."
        )
        columns = [c for c in ("flag", "n_judgments", "agreement", "agreement_lower", "agreement_upper",
                               "random_agreement", "reliability", "spam", "adversarial_share", "position_bias", "group")
                   if c in flagged.columns]
        caption = f"Flagged raters (first {self.top_n})" if len(flagged) > self.top_n else "Flagged raters"
        return _Section("Flagged raters", intro, None, [(caption, flagged[columns].head(self.top_n))])

    def agreement(self) -> pd.DataFrame:
        """Per annotator: agreement with the consensus and its 90% Jeffreys interval, the agreement of random answers
        with the rater's own label frequencies, and the median rater's agreement (see :meth:`flag_section`)."""
        from scipy.stats import beta

        probs = self.rater_model.soft_labels_.probs
        consensus = probs.reindex(self.table["pair_id"]).to_numpy()
        said = pd.Index(probs.columns).get_indexer(self.labels_as(probs.columns))
        known = (said >= 0) & ~np.isnan(consensus).any(axis=1)
        consensus, said = consensus[known], said[known]
        rows = np.arange(len(said))
        chose = np.zeros_like(consensus)
        chose[rows, said] = 1.0
        who = pd.Index(self.table["annotator"].to_numpy()[known], name="annotator")
        n = pd.Series(1.0, index=who).groupby(level=0, sort=False).sum()
        hits = pd.Series(consensus[rows, said], index=who).groupby(level=0, sort=False).sum()
        mean_consensus = pd.DataFrame(consensus, index=who).groupby(level=0, sort=False).mean()
        frequencies = pd.DataFrame(chose, index=who).groupby(level=0, sort=False).mean()
        out = pd.DataFrame({"agreement": hits / n})
        out["agreement_lower"] = beta.ppf(0.05, hits + 0.5, n - hits + 0.5)
        out["agreement_upper"] = beta.ppf(0.95, hits + 0.5, n - hits + 0.5)
        out["random_agreement"] = (mean_consensus * frequencies).sum(axis=1)
        enough = n >= self.min_judgments
        out["typical_agreement"] = float(out.loc[enough if enough.sum() >= 2 else n.index, "agreement"].median())
        return out

    def pairs_section(self) -> _Section:
        """Contested pairs, how sure the labels are, and agreement with gold where the judgments carry it."""
        model = self.models[0]
        soft = model.soft_labels_
        probs = soft.probs
        frame = pd.DataFrame({"most likely": probs.idxmax(axis=1), "probability": probs.max(axis=1),
                              "uncertainty": soft.uncertainty, "n_judgments": soft.n_judgments})
        votes = vote_counts(self.table["pair_id"], self.labels_as(probs.columns), frame.index, probs.columns)
        parts = [np.where(votes[c] > 0, f"{c}:" + votes[c].astype(str) + " ", "") for c in votes.columns]
        frame["votes"] = pd.Series(np.sum(parts, axis=0) if parts else "", index=frame.index).str.strip()
        gold = self.labels_as(probs.columns, gold_labels(self.table)).reindex(frame.index)
        has_gold = bool(gold.notna().any())
        if has_gold:
            frame["gold"] = gold
            # accord's accuracy leaves gold ties out (a tie has no right side to choose); so does this column
            frame["agrees with gold"] = np.select(
                [gold.isna(), gold.astype(str) == "tie", frame["most likely"] == gold], ["", "gold tie", "yes"], "no")
        frame = frame.join(self.pair_texts(("prompt", "response_a", "response_b"), 100).reindex(frame.index))
        frame = frame.sort_values(["probability", "n_judgments"], ascending=[True, False])
        self.save_csv(frame, "pairs")
        contested = frame["probability"] < CONTESTED_BELOW

        fig = Figure(figsize=(9, 3.0))
        left, right = fig.subplots(1, 2)
        left.hist(frame["probability"], bins=20, range=(1.0 / probs.shape[1], 1.0), color="tab:blue")
        left.axvline(CONTESTED_BELOW, color="tab:red", lw=1, ls="--", label=f"contested below {CONTESTED_BELOW}")
        left.set_xlabel("probability of the most likely label")
        left.set_ylabel("pairs")
        # above the panel: inside, the legend covered the tallest bar where no corner was free (UKPConvArg1)
        left.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, frameon=False)
        uncertainty = frame["uncertainty"].dropna()
        if len(uncertainty):
            right.hist(uncertainty, bins=20, color="tab:gray")
            right.set_xlabel("uncertainty (posterior sd of that probability)")
            right.set_ylabel("pairs")
        else:
            right.set_axis_off()
            right.text(0.5, 0.5, f"{model.method} gives no uncertainty", ha="center", va="center", fontsize=10)
        fig.suptitle(f"How sure the labels of {model.method} are", fontsize=11)
        _tight_layout(fig)
        figure = self.save_figure(fig, "pair_labels")

        intro = (
            f"<b>Contested pairs: {int(contested.sum()):,} of {len(frame):,}</b> under "
            f"<code>{html.escape(model.method)}</code>, a pair being contested when its most likely label has "
            f"probability below {CONTESTED_BELOW} (median over all pairs {frame['probability'].median():.2f}"
            + (f"; median uncertainty {uncertainty.median():.3f}" if len(uncertainty) else "")
            + "). The table lists the least certain pairs first, with their votes."
        )
        if has_gold:
            scored = frame["agrees with gold"].isin(["yes", "no"])
            judged = frame.loc[scored, "agrees with gold"] == "yes"
            in_contested = frame.loc[contested & scored, "agrees with gold"] == "yes"
            # graded gold: a model over grades scores gold 0 as a grade, one over sides leaves it out as a tie
            how = ("gold ties left out, as in every accuracy accord reports" if not self.graded else
                   "scored as " + _graded_scoring(set(probs.columns) <= {"A", "B", "tie"},
                                                  int((frame["agrees with gold"] == "gold tie").sum())))
            intro += (f" Against the gold labels of {counted(len(judged), 'pair')} ({how}) the most likely label is "
                      f"right on {judged.mean():.1%}"
                      + (f", and on {in_contested.mean():.1%} of the {len(in_contested):,} contested pairs with gold"
                         if len(in_contested) else "")
                      + ".")
        intro += " All pairs are in <code>pairs.csv</code>."
        shown = frame.head(self.top_n)
        caption = f"The {len(shown)} least certain pairs" if len(frame) > self.top_n else "Pairs, least certain first"
        return _Section("Contested pairs and how sure the labels are", intro, figure, [(caption, shown)])

    def comparison_section(self) -> _Section:
        """The fitted methods side by side: how sure, how often they agree, and against gold when there is gold."""
        first = self.models[0].soft_labels_.probs
        tops = {}
        rows = []
        gold = gold_labels(self.table)
        sides = {"A", "B", "tie"}
        # graded judgments under a model over grades and one over sides (the ordinal model): a grade and a side were
        # never the same label (every pair counted as a disagreement); the grade is read as its side there
        as_sides = any(set(m.soft_labels_.probs.columns) <= sides for m in self.models)
        gold_ties: dict[str, int] = {}
        over_sides: dict[str, bool] = {}
        for model in self.models:
            soft = model.soft_labels_
            probs = soft.probs.reindex(first.index)
            # a model fitted on part of the pairs (the context model keeps the judgments with a group) has no label
            # for the others: idxmax failed on their empty rows ("Encountered all NA values") after every fit
            top = probs.dropna(how="all").idxmax(axis=1).reindex(first.index)
            if as_sides and not set(probs.columns) <= sides:
                top = self.labels_as(sorted(sides), top)
            name = model.method if model.method not in tops else f"{model.method} ({len(tops) + 1})"
            tops[name] = top
            row = {"method": name, "inference": getattr(model, "inference", "-"),
                   "pairs": int(probs.notna().all(axis=1).sum()),
                   "mean P(most likely)": float(probs.max(axis=1).mean()),
                   f"contested (< {CONTESTED_BELOW})": int((probs.max(axis=1) < CONTESTED_BELOW).sum()),
                   "median uncertainty": float(soft.uncertainty.median()),
                   f"same label as {self.models[0].method}": _same_label(top, tops[next(iter(tops))])}
            if len(gold):
                scored_gold = self.labels_as(soft.probs.columns, gold)
                # a gold class no rater gave is none of the model's classes: scored as never predicted
                scores = metrics.score(metrics.with_gold_classes(soft.probs, scored_gold), scored_gold)
                row.update({"gold accuracy": scores["accuracy"], "gold NLL": scores["nll"],
                            "gold ECE": scores["ece"]})
                # the accuracy leaves the gold ties out, NLL and ECE read them: the intro says how many
                read = scored_gold[scored_gold.index.isin(soft.probs.index)].dropna()
                gold_ties[name] = int((read.astype(str) == "tie").sum())
                over_sides[name] = set(soft.probs.columns) <= sides
            rows.append(row)
        table = pd.DataFrame(rows).set_index("method")
        self.save_csv(table, "methods")
        names = list(tops)
        agreement = pd.DataFrame([[_same_label(tops[a], tops[b]) for b in names] for a in names],
                                 index=names, columns=names)
        self.save_csv(agreement, "method_agreement")
        fig = Figure(figsize=(7.5, 3.2))
        ax = fig.subplots()
        for model, name in zip(self.models, names):
            values = np.sort(model.soft_labels_.probs.max(axis=1).to_numpy())
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=name, lw=1.5)
        ax.set_xlabel("probability of the most likely label")
        ax.set_ylabel("share of pairs at or below")
        ax.set_title("How sure each method is", fontsize=11)
        ax.legend(fontsize=8)
        intro = (
            f"The {len(names)} fitted methods on the same {counted(len(first), 'pair')}: how sure their labels are "
            "(a curve further right is surer), how many pairs each leaves contested, and how often two methods choose "
            "the same most likely label"
            + (" (a method's most likely grade read as its side, as another method's labels are sides)" if as_sides
               and any(not set(m.soft_labels_.probs.columns) <= sides for m in self.models) else "")
            + (" (on the pairs both label: a method fitted on part of the table labels fewer, as its <i>pairs</i> "
               "column says)" if (table["pairs"] < len(first)).any() else "")
            + (f"; against the gold labels of {counted(len(gold), 'pair')}"
               f"{_gold_ties_phrase(gold_ties, over_sides if self.graded else None)}, accuracy "
               "and, lower is better, NLL and ECE" if len(gold) else "")
            + ". A blank uncertainty: the method gives none. Tables in <code>methods.csv</code> and "
            "<code>method_agreement.csv</code>."
        )
        return _Section("The methods side by side", intro, self.save_figure(fig, "methods"),
                        [("Methods", table), ("Share of pairs with the same most likely label", agreement)])

    def group_section(self) -> _Section:
        effects = self.context.group_effects_.copy()
        self.save_csv(effects, "group_effects", index=False)
        figure = None
        # Four effects per group: a group column of hundreds of values made a figure thousands of pixels tall with
        # unreadable rows. The figure keeps the max_forest largest effects, in the table's order; the CSV holds all.
        largest = np.argsort(-effects["mean"].abs().to_numpy(), kind="stable")[: self.max_forest]
        plotted = effects.iloc[np.sort(largest)]
        if len(plotted):
            labels = [f"{r.effect}: {r.group} {r.term}".strip() for r in plotted.itertuples()]
            fig = Figure(figsize=(7.5, 1.0 + 0.3 * len(plotted)))
            ax = fig.subplots()
            y = np.arange(len(plotted))[::-1]
            spread = [plotted["mean"] - plotted["lower"], plotted["upper"] - plotted["mean"]]
            ax.errorbar(plotted["mean"], y, xerr=spread, fmt="o", color="tab:red", ecolor="tab:gray", capsize=3)
            ax.axvline(0.0, color="black", lw=0.8, ls="--")
            ax.set_yticks(y, labels, fontsize=8)
            ax.set_xlabel(f"effect vs reference group '{effects['reference'].iloc[0]}' (90% interval)")
            ax.set_title("Group effects", fontsize=11)
            figure = self.save_figure(fig, "group_effects")
        design = self.context.design_
        intro = (
            f"Effects of <code>{html.escape(str(design.group_column))}</code> on preference and reliability, each a "
            f"contrast against the reference group <code>{html.escape(design.group_names[0])}</code>, with 90% "
            "credible intervals. <b>preference_scale</b> = lambda - 1 (0: same preference as the reference, -1: "
            "indifferent, -2: the opposite side); <b>preference_shift</b>: log-odds shift along an item covariate; "
            "<b>reliability</b>: log-odds shift of an honest report; <b>tie</b>: shift of the tie threshold."
            + (f" The figure and table show the {len(plotted)} largest of the {len(effects)} effects; all are in "
               "<code>group_effects.csv</code>." if len(plotted) < len(effects) else "")
        )
        shown = plotted.drop(columns=["meaning"]).round(3)
        return _Section("Group effects", intro, figure, [("Group effects", shown)])

    def pulls_section(self, covariate: str) -> _Section:
        """Each rater's pull towards a pair covariate (a debiased model): who is pulled at all, and how much."""
        name = f"{covariate}_effect"
        table = self.debiased.annotators_
        columns = ["n_judgments", name, f"{name}_lower", f"{name}_upper", f"p_{name}_nonzero", f"{name}_median",
                   f"{name}_lfsr"]
        pulls = table[columns].sort_values([f"p_{name}_nonzero", name], ascending=False)
        stem = f"pulls_{_file_stem(covariate)}"
        self.save_csv(pulls, stem)
        pulled = pulls[f"p_{name}_nonzero"] >= 0.5
        shown = pulls.reindex(pulls[name].abs().sort_values(ascending=False).index).head(self.max_forest)
        shown = shown.sort_values(name)
        fig = Figure(figsize=(7.5, 1.0 + 0.22 * len(shown)))
        ax = fig.subplots()
        y = np.arange(len(shown))
        colors = np.where(shown[f"p_{name}_nonzero"] >= 0.5, "tab:red", "tab:gray")
        for row, (value, low, high, color) in enumerate(zip(shown[name], shown[f"{name}_lower"],
                                                             shown[f"{name}_upper"], colors)):
            ax.errorbar(value, y[row], xerr=[[value - low], [high - value]], fmt="o", color=color, ecolor=color,
                        capsize=2)
        ax.axvline(0.0, color="black", lw=0.8, ls="--")
        ax.set_yticks(y, [str(a) for a in shown.index], fontsize=8)
        _shorten_tick_labels(ax)
        ax.set_xlabel(f"pull towards {covariate}, log-odds per sd of the covariate (90% interval)")
        ax.set_title(f"Raters' pull towards {covariate} (red: more likely pulled than not)", fontsize=11)
        shared = self.debiased.population_.loc[f"{name}_shared", "mean"]
        intro = (
            f"Each rater's pull towards the side larger in <code>{html.escape(covariate)}</code>, relative to the "
            f"bulk of the raters (a pull all raters share, {float(shared):+.2f}, cannot be told from quality). "
            f"<b>{int(pulled.sum())} of {len(pulls)}</b> raters are more likely pulled than not "
            "(<code>p_nonzero</code> >= 0.5, adaptive shrinkage; the median is zero for the others); "
            f"<code>lfsr</code>: the probability of being wrong about the pull's sign. Shown: the "
            f"{len(shown)} largest pulls. All raters in <code>{html.escape(stem)}.csv</code>."
        )
        # top_n rows, as every table of raters: in a crowd of thousands the page held each one more likely pulled
        listed = pulls[pulled]
        caption = "Raters more likely pulled than not" + (
            f" (the {self.top_n} most likely of {len(listed)})" if len(listed) > self.top_n else "")
        return _Section(f"Pull towards {covariate}", intro, self.save_figure(fig, stem),
                        [(caption, listed.head(self.top_n).round(3))])

    def types_section(self) -> _Section:
        types = self.types.types_
        self.save_csv(types, "types", index=False)
        assignments = self.types.annotators_
        self.save_csv(assignments, "type_assignments")
        # two types agree on a pair when they hold the same label most likely: P(first class) > 0.5 on both sides
        # called a type holding B and one holding tie (or 'cat' and 'dog') agreed
        held = self.types.group_probabilities().mean_clean().argmax(axis=2)  # [pairs, types]
        agree = np.array([[(held[:, a] == held[:, b]).mean() for b in range(held.shape[1])]
                          for a in range(held.shape[1])])
        fig = Figure(figsize=(9, 3.2))
        left, right = fig.subplots(1, 2)
        left.bar(types["type"], types["share"], color="tab:purple")
        left.set_ylabel("rater share")
        left.set_title("Rater types", fontsize=11)
        right.imshow(agree, cmap="Greens", vmin=0, vmax=1)
        for (r, c), value in np.ndenumerate(agree):
            # white on the dark cells, as in the confusion matrices: black on Greens' darkest (a type agreeing with
            # itself, 1.00) was barely legible
            right.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=9,
                       color="white" if value > 0.6 else "black")
        right.set_xticks(range(len(types)), types["type"])
        right.set_yticks(range(len(types)), types["type"])
        right.set_title("Share of pairs where two types agree", fontsize=10)
        _tight_layout(fig)
        intro = f"{len(types)} latent rater types (chosen by held-out likelihood where <code>n_types='auto'</code>)."
        tables = [("Rater types", types.round(3))]
        if hasattr(self.types, "selection_"):
            self.save_csv(self.types.selection_, "type_selection", index=False)
            tables.append(("Choice of the number of types", self.types.selection_.round(4)))
        return _Section("Rater types", intro, self.save_figure(fig, "rater_types"), tables)

    def disagreement_sections(self) -> list[_Section]:
        """The pairs the groups (or types) disagree on most, and how each pair's disagreement splits."""
        labels = pluralistic_soft_labels(self.plural, self.weights)
        split = decompose_disagreement(self.plural, self.weights)
        kind = "types" if self.plural is self.types else "groups"
        # rater types and individual labels let members of one group genuinely differ: that share of a pair's
        # disagreement (on UKPConvArg1 under two types, 81% on average) was left out of the figure and the text,
        # which called the rest, between groups and noise, the whole split
        within = bool(split["within_group"].gt(0).any())
        group_names = [column_name(group) for group in group_probabilities_of(self.plural).groups]
        # pairwise labels: each group's preference P(A > B); other labels (categories, grades: rater types fit them
        # too) have no sides, and the section failed on them after the fit (P(A > B) of classes 'bird', 'cat', a
        # figure of no panels): each group's probability of the population's most likely label instead
        pairwise = {"A", "B"} <= set(labels.probs.columns)
        if pairwise:
            per_group = [f"p_a_{name}" for name in group_names]
            lead = ["p_a_population"]
            frame = pd.DataFrame({"p_a_population": labels.p_a}).join(labels.extra[per_group])
        else:
            per_group = [f"p_consensus_{name}" for name in group_names]
            lead = ["consensus", "p_consensus_population"]
            frame = _consensus_view(labels, group_names)
        frame = frame.join(split)
        frame = frame.join(self.pair_texts(("prompt", "response_a", "response_b", "item_topic"), 160)
                           .reindex(frame.index))
        frame["n_judgments"] = labels.n_judgments
        # within after between: under one type (rater types may choose one, as on VLDB'17 Dog) every pair's between
        # is 0, and the ranking was the file's order; with two or more the floats leave it as it was
        frame = frame.sort_values(["between", "disagreement", "within"], ascending=False)
        single = len(group_names) == 1
        self.save_csv(frame, "genuine_disagreement")
        top = frame.head(self.top_n)
        # drawn: each group's label on the pair, whose spread ranks the pairs ('between'), with P(tie) where there
        # are ties; the groups' preferences P(A > B) of the table looked alike on the top pairs of UKPConvArg1, where
        # one stance holds 'tie' (0.97) and another 'B' (0.91). Under rater types and individual labels the two agree.
        held = pluralistic_soft_labels(self.plural, self.weights, target="label")
        member = kind[:-1]
        if pairwise:  # one panel per side: (x label, each group's values, the population's)
            panels = [(f"P(the {member}'s label is {side})",
                       {name: held.extra[f"p_{str(side).lower()}_{name}"] for name in group_names}, held.probs[side])
                      for side in held.probs.columns if str(side).lower() in ("a", "tie")]
        else:
            view = _consensus_view(held, group_names)
            panels = [(f"P(the {member}'s label is the population's most likely)",
                       {name: view[f"p_consensus_{name}"] for name in group_names}, view["p_consensus_population"])]
        fig = Figure(figsize=(4.0 + 3.5 * len(panels), 1.2 + 0.28 * len(top)))
        axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
        y = np.arange(len(top))[::-1]
        markers = "osD^v<>p*h"
        for ax, (xlabel, groups, population) in zip(axes, panels):
            for g, (name, values) in enumerate(groups.items()):
                ax.scatter(values.reindex(top.index), y, marker=markers[g % len(markers)], label=name, s=30)
            ax.scatter(population.reindex(top.index), y, marker="|", color="black", s=120, label="population")
            ax.axvline(0.5, color="gray", lw=0.8, ls="--")
            ax.set_xlim(0, 1)
            ax.set_xlabel(xlabel)
        axes[0].set_yticks(y, [_short_id(p, MAX_PAIR_LABEL) for p in top.index], fontsize=8)
        fig.suptitle(f"Pairs with the most genuine ({'within' if single else 'between'}-{member}) disagreement",
                     fontsize=11)
        axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        _tight_layout(fig)
        figure = self.save_figure(fig, "genuine_disagreement")
        fig2 = Figure(figsize=(7.5, 3.0))
        ax2 = fig2.subplots()
        seen = split[split["total"] > 0.05]
        parts = ["disagreement", *(["within_group"] if within else []), "noise_share"]
        names = [f"genuine (between {kind})", *([f"genuine (within {kind})"] if within else []), "noise"]
        ax2.hist([seen[c] for c in parts], bins=20, range=(0, 1), label=names,
                 color=["tab:orange", *(["tab:olive"] if within else []), "tab:gray"])
        ax2.set_xlabel("share of the pair's disagreement")
        ax2.set_ylabel("pairs")
        ax2.legend(fontsize=8)
        ax2.set_title("How much of each pair's disagreement is genuine", fontsize=11)
        self.save_figure(fig2, "disagreement_split")
        intro = (
            f"Per pair, the disagreement (probability that two judgments differ) split into genuine disagreement "
            f"between {kind}"
            + (f", genuine disagreement within {kind} (under this model the members of one may differ)" if within
               else "")
            + " and rater noise (see <code>accord.aggregate.pluralistic</code>); population weights: "
            f"<code>{html.escape(str(self.weights))}</code>. "
            + (f"The model has one {member}: no pair's {kind} differ (between-{member} disagreement 0 on every pair), "
               f"so the pairs are ranked by the genuine disagreement within the {member}; the figure shows its "
               "label on the pair, the table its " if single else
               f"The pairs where the {kind} differ most: the figure shows each one's label on the pair (what the split "
               "compares), the table each one's ")
            + ("preference P(A > B)" if pairwise else "probability of the label the population holds most likely "
               "(<i>consensus</i>)")
            + ". All pairs in <code>genuine_disagreement.csv</code>."
        )
        columns = [*lead, *per_group, *parts, "n_judgments"]
        columns += [c for c in ("item_topic", "prompt", "response_a", "response_b") if c in top]
        split_intro = (
            "Over all pairs with some disagreement: the share of each pair's disagreement that is genuine "
            f"(between {kind}" + (f"; within {kind}" if within else "") + ") and the share that is rater noise.")
        return [_Section("Pairs with the most genuine disagreement", intro, figure,
                         [("Genuine disagreement", top[columns].round(3))]),
                _Section("Noise versus genuine disagreement", split_intro, "disagreement_split")]


def _consensus_view(labels: Any, names: list[str]) -> pd.DataFrame:
    """Per pair of pluralistic soft labels (:func:`pluralistic_soft_labels`, groups by their column ``names``): the
    population's most likely label (``consensus``), its probability and each group's probability of it."""
    probs = labels.probs.to_numpy(dtype=float)
    top = probs.argmax(axis=1)
    rows = np.arange(len(top))
    out = pd.DataFrame({"consensus": np.asarray(labels.probs.columns, dtype=object)[top],
                        "p_consensus_population": probs[rows, top]}, index=labels.probs.index)
    for name in names:
        per_class = labels.extra[[f"p_{str(c).lower()}_{name}" for c in labels.probs.columns]].to_numpy(dtype=float)
        out[f"p_consensus_{name}"] = per_class[rows, top]
    return out


def _shown_texts(values: pd.Series, width: int) -> pd.Series:
    """A column of :meth:`_ReportBuilder.pair_texts`, cut to ``width`` characters: a column of texts (some
    missing) at C speed, where a million pairs took seconds a column one cell at a time; any other cell by cell."""
    if only_texts(values):
        texts = values.astype(str).astype(object).where(values.notna(), "")
    else:
        texts = pd.Series([messages_text(v) if is_messages(v) else "" if _missing(v) else str(v) for v in values],
                          index=values.index, dtype=object)
    return texts.str.slice(0, width)


def _missing(value: Any) -> bool:
    """Whether a cell holds no value (``None``, NaN, ``pd.NA``); a list (chat messages) or another container holds
    one."""
    return not isinstance(value, (list, tuple, dict, np.ndarray)) and bool(pd.isna(value))


def _same_label(one: pd.Series, other: pd.Series) -> float:
    """The share of the pairs both methods label on which they choose the same most likely label (NaN: none)."""
    both = one.notna() & other.notna()
    return float((one[both] == other[both]).mean()) if both.any() else float("nan")


# -- HTML ----------------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;
color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0 1rem;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:right;vertical-align:top;max-width:26rem}
td{overflow-wrap:anywhere}th{background:#f4f4f4}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee}nav a{margin-right:1rem}code{background:#f4f4f4;padding:0 .2rem}
.files{font-size:.85rem;color:#555}
"""


def _image(folder: Path, name: str) -> str:
    data = base64.b64encode((folder / "figures" / f"{name}.png").read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def _render_page(folder: Path, title: str, summary: pd.DataFrame, sections: list[_Section]) -> str:
    anchors = [f"s{i}" for i in range(len(sections))]
    nav = " ".join(f'<a href="#{a}">{html.escape(s.title)}</a>' for a, s in zip(anchors, sections))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>",
        "<h2>Summary</h2>",
        summary.to_html(index=False, escape=True, border=0),
    ]
    for anchor, section in zip(anchors, sections):
        parts.append(f"<h2 id='{anchor}'>{html.escape(section.title)}</h2><p>{section.intro}</p>")
        if section.figure is not None:
            parts.append(_image(folder, section.figure))
        for caption, frame in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(frame.to_html(escape=True, border=0, na_rep="", float_format=lambda v: f"{v:.3g}"))
    files = sorted(p.name for p in folder.glob("*.csv"))
    parts.append("<p class='files'>Tables as CSV beside this page: " + ", ".join(files) + "; figures in figures/.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["write_report"]
