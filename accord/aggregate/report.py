"""The rater report: one self-contained HTML page with PNG figures, and the same tables as CSV.

:func:`write_report` takes a judgments table and fitted models (any :class:`~accord.models.base.RaterModel`;
a :class:`~accord.models.context.ContextPreference` adds group effects and the genuine-disagreement section, a
:class:`~accord.models.rater_types.RaterTypes` the rater types) and writes ``out_dir``:

``report.html``
    The page. Figures are embedded (base64 PNG), so the file alone can be mailed or opened offline.
``figures/*.png``
    The same figures as files: ``reliability_forest.png`` (ArviZ forest plot of annotator reliability with 90%
    credible intervals), ``confusion_matrices.png`` (worst and best raters), ``group_effects.png``,
    ``rater_types.png``, ``genuine_disagreement.png``, ``disagreement_split.png``.
``*.csv``
    ``summary.csv``, ``annotators.csv``, ``flagged.csv``, ``confusion.csv``, ``group_effects.csv``, ``types.csv``,
    ``type_assignments.csv``, ``genuine_disagreement.csv`` (sections whose model is absent are left out).

The folder is built in a temporary sibling and renamed into place, so a crash leaves the previous report or
none, never half of one.

Confusion matrices are *soft*: rater ``j``'s row ``c`` column ``k`` counts ``sum_n P(true class of pair_n = c)`` over
their judgments labelled ``k``, with the first model's soft labels, so they show how a rater answers relative to
the consensus whatever model produced it. Flags: a rater is a *spammer* when their spam probability (or, for
models without one, their soft accuracy is within 0.1 of chance) exceeds 0.5, *adversarial* when their
adversarial probability exceeds 0.5 (or their soft accuracy is below chance by more than 0.1), with at least
``min_judgments`` judgments either way.
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from accord.aggregate.pluralistic import decompose_disagreement, pluralistic_soft_labels
from accord.datasets import AccordError, encode, validate

FLAG_THRESHOLD = 0.5


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
        Raters with fewer judgments are not ranked, flagged or drawn (their estimates are mostly prior).
    max_forest
        At most this many annotators in the forest plot (half least, half most reliable).
    """
    if not models:
        raise AccordError("write_report needs at least one fitted model")
    for model in models:
        if not hasattr(model, "soft_labels_"):
            raise AccordError(f"{type(model).__name__} is not fitted: call fit(judgments) first")
    table = judgments if "accord" in judgments.attrs else validate(judgments)
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes the folder private; a report is meant to be shared
    try:
        (work / "figures").mkdir()
        builder = _ReportBuilder(work, table, models, weights, top_n, min_judgments, max_forest)
        sections = builder.build()
        (work / "report.html").write_text(_render_page(work, title, builder.summary, sections), encoding="utf-8")
        _swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


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


class _ReportBuilder:
    def __init__(self, work: Path, table: pd.DataFrame, models: tuple[Any, ...], weights: Any, top_n: int,
                 min_judgments: int, max_forest: int) -> None:
        self.work, self.table, self.models = work, table, models
        self.weights, self.top_n, self.min_judgments, self.max_forest = weights, top_n, min_judgments, max_forest
        self.rater_model = next((m for m in models if hasattr(m, "annotators_")), None)
        self.context = next((m for m in models if hasattr(m, "group_effects_")), None)
        self.types = next((m for m in models if hasattr(m, "types_")), None)
        self.plural = self.context if self.context is not None else self.types
        self.summary: pd.DataFrame = pd.DataFrame()

    # -- helpers ------------------------------------------------------------------------------------------

    def save_figure(self, figure: Figure, name: str) -> str:
        path = self.work / "figures" / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        return name

    def save_csv(self, frame: pd.DataFrame, name: str, index: bool = True) -> None:
        frame.to_csv(self.work / f"{name}.csv", index=index)

    def ranked(self) -> pd.DataFrame:
        """Annotators with enough judgments and a reliability, least reliable first."""
        annotators = self.rater_model.annotators_
        if "reliability" not in annotators.columns:
            return annotators.iloc[0:0]
        counts = annotators["n_judgments"] if "n_judgments" in annotators else self.counts().reindex(annotators.index)
        keep = annotators[counts >= self.min_judgments]
        if len(keep) < 2:
            keep = annotators
        return keep.sort_values("reliability")

    def counts(self) -> pd.Series:
        return self.table.groupby("annotator", sort=False).size()

    # -- sections -----------------------------------------------------------------------------------------

    def build(self) -> list[_Section]:
        self.summary = self.summary_table()
        self.save_csv(self.summary, "summary", index=False)
        sections: list[_Section] = []
        if self.rater_model is not None:
            sections += [self.reliability_section(), self.confusion_section(), self.flag_section()]
        if self.context is not None:
            sections.append(self.group_section())
        if self.types is not None:
            sections.append(self.types_section())
        if self.plural is not None:
            sections.append(self.disagreement_section())
            sections.append(_Section(
                "Noise versus genuine disagreement",
                "Over all pairs with some disagreement: the share of each pair's disagreement that is genuine "
                "(between groups or types) and the share that is rater noise.",
                "disagreement_split",
            ))
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
            rows.append((f"model: {model.method}", f"inference={getattr(model, 'inference', '?')}"))
        return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": str})

    def reliability_section(self) -> _Section:
        annotators = self.rater_model.annotators_
        self.save_csv(annotators, "annotators")
        ranked = self.ranked()
        half = max(1, self.max_forest // 2)
        chosen = ranked.index[:half].append(ranked.index[-half:]).unique() if len(ranked) > self.max_forest \
            else ranked.index
        figure = self.forest(chosen)
        intro = (
            f"Posterior mean and 90% credible interval of each annotator's reliability under "
            f"<code>{html.escape(self.rater_model.method)}</code> (the probability that a vote is the true label). "
            f"Shown: the {min(half, len(ranked))} least and most reliable of the {len(ranked)} annotators with at "
            f"least {self.min_judgments} judgments. All annotators are in <code>annotators.csv</code>."
        )
        shown = annotators.loc[ranked.index[: self.top_n]]
        return _Section("Annotator reliability", intro, figure, [("Least reliable annotators", shown)])

    def forest(self, chosen: pd.Index) -> str | None:
        if len(chosen) == 0:
            return None
        height = 1.0 + 0.22 * len(chosen)
        figure = Figure(figsize=(7.5, height))
        ax = figure.subplots()
        drawn = False
        with contextlib.suppress(Exception):  # models without reliability draws fall back to their intervals
            import arviz as az

            idata = self.rater_model.to_arviz()
            if "reliability" in idata.posterior and "annotator" in idata.posterior["reliability"].dims:
                labels = [str(a) for a in chosen]
                az.plot_forest(
                    idata, var_names=["reliability"], coords={"annotator": labels}, combined=True, hdi_prob=0.9,
                    ax=ax, textsize=9, colors="tab:blue",
                )
                ax.set_title("Annotator reliability (90% HDI)", fontsize=11)
                drawn = True
        if not drawn:
            frame = self.rater_model.annotators_.loc[chosen]
            y = np.arange(len(frame))
            lower = frame.get("reliability_lower", frame["reliability"])
            upper = frame.get("reliability_upper", frame["reliability"])
            ax.errorbar(frame["reliability"], y, xerr=[frame["reliability"] - lower, upper - frame["reliability"]],
                        fmt="o", color="tab:blue", ecolor="tab:gray", capsize=2)
            ax.set_yticks(y, [str(a) for a in frame.index], fontsize=8)
            ax.set_title("Annotator reliability (90% interval)", fontsize=11)
        ax.set_xlabel("reliability")
        ax.set_xlim(0, 1)
        return self.save_figure(figure, "reliability_forest")

    def soft_confusion(self, annotator: Any) -> pd.DataFrame:
        probs = self.rater_model.soft_labels_.probs
        rows = self.table[self.table["annotator"] == annotator]
        truth = probs.reindex(rows["pair_id"]).to_numpy()
        classes = list(probs.columns)
        reported = pd.Index(classes).get_indexer(rows["label"])
        matrix = np.zeros((len(classes), len(classes)))
        for k in range(len(classes)):  # a handful of classes, never a loop over judgments
            matrix[:, k] = np.nansum(truth[reported == k], axis=0)
        return pd.DataFrame(matrix, index=[f"true {c}" for c in classes], columns=[f"said {c}" for c in classes])

    def confusion_section(self) -> _Section:
        ranked = self.ranked()
        picks = list(ranked.index[:3]) + [a for a in ranked.index[-3:][::-1] if a not in set(ranked.index[:3])]
        rows = []
        figure = Figure(figsize=(3.2 * max(len(picks[:3]), 1), 6.4 if len(picks) > 3 else 3.3))
        axes = figure.subplots(2 if len(picks) > 3 else 1, max(min(len(picks), 3), 1), squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        for position, annotator in enumerate(picks):
            matrix = self.soft_confusion(annotator)
            kind = "worst" if position < 3 else "best"
            for true_class, row in matrix.iterrows():
                for said, value in row.items():
                    rows.append({"annotator": annotator, "rank": kind, "true": true_class[5:], "said": said[5:],
                                 "count": float(value)})
            ax = axes.ravel()[position]
            ax.set_axis_on()
            share = matrix.to_numpy() / np.maximum(matrix.to_numpy().sum(1, keepdims=True), 1e-12)
            ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
            for (r, c), value in np.ndenumerate(matrix.to_numpy()):
                ax.text(c, r, f"{value:.0f}" if value >= 9.95 else f"{value:.1f}", ha="center", va="center",
                        color="white" if share[r, c] > 0.6 else "black", fontsize=9)
            ax.set_xticks(range(matrix.shape[1]), [c[5:] for c in matrix.columns])
            ax.set_yticks(range(matrix.shape[0]), [r[5:] for r in matrix.index])
            ax.set_xlabel("said")
            ax.set_ylabel("consensus")
            reliability = self.rater_model.annotators_.loc[annotator, "reliability"]
            ax.set_title(f"{kind}: {str(annotator)[:18]}\nreliability {reliability:.2f}", fontsize=9)
        figure.tight_layout()
        confusion = pd.DataFrame(rows, columns=["annotator", "rank", "true", "said", "count"])
        self.save_csv(confusion, "confusion", index=False)
        intro = (
            "Soft confusion matrices of the three least and three most reliable annotators: rows are the consensus "
            "class (weighted by the model's posterior), columns what the annotator said, cells expected counts "
            "(colour: share of the row)."
        )
        return _Section("Confusion matrices of the worst and best raters", intro,
                        self.save_figure(figure, "confusion_matrices") if picks else None)

    def flag_section(self) -> _Section:
        annotators = self.rater_model.annotators_.copy()
        counts = annotators["n_judgments"] if "n_judgments" in annotators else self.counts().reindex(annotators.index)
        enough = counts >= self.min_judgments
        accuracy = self.soft_accuracy()
        annotators["soft_accuracy"] = accuracy.reindex(annotators.index)
        chance = 1.0 / self.rater_model.soft_labels_.probs.shape[1]
        if "spam" in annotators:
            spam = annotators["spam"] > FLAG_THRESHOLD
        else:
            spam = (annotators["soft_accuracy"] - chance).abs() < 0.1
        if "adversarial_share" in annotators:
            adversarial = annotators["adversarial_share"] > FLAG_THRESHOLD
        else:
            adversarial = annotators["soft_accuracy"] < chance - 0.1
        annotators["flag"] = np.where(adversarial & enough, "adversarial", np.where(spam & enough, "spammer", ""))
        flagged = annotators[annotators["flag"] != ""].sort_values(["flag", "soft_accuracy"])
        self.save_csv(flagged, "flagged")
        n_spam, n_adv = int((flagged["flag"] == "spammer").sum()), int((flagged["flag"] == "adversarial").sum())
        intro = (
            f"{n_spam} spammers and {n_adv} adversarial raters among the annotators with at least {self.min_judgments} "
            f"judgments (spam or adversarial probability above {FLAG_THRESHOLD}; soft accuracy = agreement with the "
            f"consensus). All flags in <code>flagged.csv</code>."
        )
        columns = [c for c in ("flag", "n_judgments", "reliability", "spam", "adversarial_share", "position_bias",
                               "soft_accuracy", "group") if c in flagged.columns]
        shown = flagged[columns].head(self.top_n)
        return _Section("Flagged raters", intro, None, [(f"First {self.top_n} flags", shown)])

    def soft_accuracy(self) -> pd.Series:
        probs = self.rater_model.soft_labels_.probs
        truth = probs.reindex(self.table["pair_id"]).to_numpy()
        said = pd.Index(probs.columns).get_indexer(self.table["label"])
        agree = truth[np.arange(len(said)), np.maximum(said, 0)]
        return pd.Series(agree, index=self.table.index).groupby(self.table["annotator"].to_numpy()).mean()

    def group_section(self) -> _Section:
        effects = self.context.group_effects_.copy()
        self.save_csv(effects, "group_effects", index=False)
        figure = None
        if len(effects):
            labels = [f"{r.effect}: {r.group} {r.term}".strip() for r in effects.itertuples()]
            fig = Figure(figsize=(7.5, 1.0 + 0.3 * len(effects)))
            ax = fig.subplots()
            y = np.arange(len(effects))[::-1]
            spread = [effects["mean"] - effects["lower"], effects["upper"] - effects["mean"]]
            ax.errorbar(effects["mean"], y, xerr=spread, fmt="o", color="tab:red", ecolor="tab:gray", capsize=3)
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
        )
        shown = effects.drop(columns=["meaning"]).round(3)
        return _Section("Group effects", intro, figure, [("Group effects", shown)])

    def types_section(self) -> _Section:
        types = self.types.types_
        self.save_csv(types, "types", index=False)
        assignments = self.types.annotators_
        self.save_csv(assignments, "type_assignments")
        probs = self.types.group_probabilities().mean_clean()[:, :, 0]
        agree = np.array([[((probs[:, a] > 0.5) == (probs[:, b] > 0.5)).mean() for b in range(probs.shape[1])]
                          for a in range(probs.shape[1])])
        fig = Figure(figsize=(9, 3.2))
        left, right = fig.subplots(1, 2)
        left.bar(types["type"], types["share"], color="tab:purple")
        left.set_ylabel("rater share")
        left.set_title("Rater types", fontsize=11)
        right.imshow(agree, cmap="Greens", vmin=0, vmax=1)
        for (r, c), value in np.ndenumerate(agree):
            right.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=9)
        right.set_xticks(range(len(types)), types["type"])
        right.set_yticks(range(len(types)), types["type"])
        right.set_title("Share of pairs where two types agree", fontsize=10)
        fig.tight_layout()
        intro = f"{len(types)} latent rater types (chosen by held-out likelihood where <code>n_types='auto'</code>)."
        tables = [("Rater types", types.round(3))]
        if hasattr(self.types, "selection_"):
            self.save_csv(self.types.selection_, "type_selection", index=False)
            tables.append(("Choice of the number of types", self.types.selection_.round(4)))
        return _Section("Rater types", intro, self.save_figure(fig, "rater_types"), tables)

    def disagreement_section(self) -> _Section:
        labels = pluralistic_soft_labels(self.plural, self.weights)
        split = decompose_disagreement(self.plural, self.weights)
        extra = labels.extra
        per_group = [c for c in extra.columns if c.startswith("p_a_")]
        frame = pd.DataFrame({"p_a_population": labels.p_a}).join(extra[per_group]).join(split)
        pairs = self.table.drop_duplicates("pair_id").set_index("pair_id")
        for column in ("prompt", "response_a", "response_b", "item_topic"):
            if column in pairs:
                frame[column] = pairs[column].reindex(frame.index).astype(str).str.slice(0, 160)
        frame["n_judgments"] = labels.n_judgments
        frame = frame.sort_values(["between", "disagreement"], ascending=False)
        self.save_csv(frame, "genuine_disagreement")
        top = frame.head(self.top_n)
        fig = Figure(figsize=(7.5, 1.2 + 0.28 * len(top)))
        ax = fig.subplots()
        y = np.arange(len(top))[::-1]
        markers = "osD^v<>p*h"
        for g, column in enumerate(per_group):
            ax.scatter(top[column], y, marker=markers[g % len(markers)], label=column[4:], s=30)
        ax.scatter(top["p_a_population"], y, marker="|", color="black", s=120, label="population")
        ax.axvline(0.5, color="gray", lw=0.8, ls="--")
        ax.set_yticks(y, [str(p)[:24] for p in top.index], fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("P(A > B)")
        ax.set_title("Pairs with the most genuine (between-group) disagreement", fontsize=11)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        figure = self.save_figure(fig, "genuine_disagreement")
        fig2 = Figure(figsize=(7.5, 3.0))
        ax2 = fig2.subplots()
        seen = split[split["total"] > 0.05]
        ax2.hist([seen["disagreement"], seen["noise_share"]], bins=20, range=(0, 1), label=["genuine (between groups)",
                 "noise"], color=["tab:orange", "tab:gray"])
        ax2.set_xlabel("share of the pair's disagreement")
        ax2.set_ylabel("pairs")
        ax2.legend(fontsize=8)
        ax2.set_title("How much of each pair's disagreement is genuine", fontsize=11)
        self.save_figure(fig2, "disagreement_split")
        kind = "types" if self.plural is self.types else "groups"
        intro = (
            f"Per pair, the disagreement (probability that two judgments differ) split into genuine disagreement "
            f"between {kind} and rater noise (see <code>accord.aggregate.pluralistic</code>); population weights: "
            f"<code>{html.escape(str(self.weights))}</code>. The pairs where the {kind} differ most, with each one's "
            f"P(A > B). All pairs in <code>genuine_disagreement.csv</code>."
        )
        columns = ["p_a_population", *per_group, "disagreement", "noise_share", "n_judgments"]
        columns += [c for c in ("item_topic", "prompt", "response_a", "response_b") if c in top]
        return _Section("Pairs with the most genuine disagreement", intro, figure,
                        [("Genuine disagreement", top[columns].round(3))])


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
