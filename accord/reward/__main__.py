"""Command line of the reward trainer: ``accord train|evaluate|score`` (``accelerate launch -m accord.reward ...``
runs the same on several processes).

    accord train --model all-MiniLM-L6-v2 --train-path cleaned.parquet --output-dir rm
    accord train --config reward.json --max-steps 100        # flags override the config file
    accord evaluate rm held_out.parquet [--out metrics.json]
    accord score rm responses.jsonl --out scored.parquet
    accord combine rm overall_pairs.parquet --method fitted   # a multi-attribute model's attributes into one reward

Every :class:`accord.reward.RewardConfig` field is a flag (``--batch-size``, ``--loss``, ``--no-packing``, ...), with
the field's help text, default and choices in ``accord train -h``. Problems with the input print one line and exit
with status 2; an interrupt (Ctrl-C) prints one line saying what was kept and exits with status 130 (143 after a
SIGTERM, which a cluster scheduler sends to pre-empt a job: it is taken as Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accord._flags import add_progress_flags, parse_flags, progress_of
from accord.datasets.errors import AccordError, SettingError, SettingWarning, warnings_as_lines
from accord.datasets.io import json_text

COMMANDS = ("train", "evaluate", "score", "combine", "calibrate")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
GROUP_TITLES = {
    "model": "model: the backbone, its head and what trains",
    "data": "data: what is read and how it is batched",
    "loss": "loss",
    "optimisation": "optimisation",
    "bookkeeping": "output, checkpoints and logging",
}


def _field_type(annotation: Any) -> Any:
    """The scalar type of a config field's annotation (``int | None`` -> int, ``str | list[str]`` -> str)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"typing": typing, "Any": Any})  # noqa: S307 - the dataclass's own annotations
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _field_type(args[0])
    if typing.get_origin(annotation) is list:
        return str
    return annotation


METAVARS = {"model": "PATH", "train_path": "FILE", "eval_path": "FILE", "output_dir": "DIR",
            "resume_from": "CHECKPOINT", "lora_target_modules": "MODULES", "attn_implementation": "NAME"}


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`RewardConfig` field, in the field's group, with its help, default and choices; every
    flag defaults to "not given" so that a config file can fill it."""
    from accord.reward.config import GROUPS, RewardConfig, choices_of

    parser.add_argument("--config", metavar="FILE",
                        help="a JSON (or YAML) file of these settings by field name; flags override it")
    groups = {name: parser.add_argument_group(GROUP_TITLES[name]) for name in GROUPS}
    for f in dataclasses.fields(RewardConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(f.type)
        choices = choices_of(f)
        text = f.metadata["help"] if f.default == "" else f"{f.metadata['help']} (default: {_default_text(f.default)})"
        metavar = "{" + ",".join(choices) + "}" if choices else METAVARS.get(f.name, {int: "N", float: "X"}.get(
            kind, "TEXT"))
        if f.type.endswith("| None") and f.default is not None and kind is not bool:
            # save_steps 500: 'unset' (no checkpoints) was a config file's null alone
            text = text[:-1] + "; 'none' unsets it)"
            kind = _or_none(kind)
        text = text.replace("%", "%%")  # argparse formats help with %
        group = groups[f.metadata["group"]]
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None, metavar=metavar, help=text)
    # every other accord command takes --quiet: `accord train --quiet` was "unrecognized arguments"
    groups["bookkeeping"].add_argument("--quiet", action="store_true",
                                       help="no progress bars or lines per phase, as --no-progress")


UNSET = "none"  # what a flag is given to unset a setting whose default is set (--save-steps none)


class _Unset:
    """The parsed value of ``--flag none``: the setting unset (``None`` itself means "flag not given")."""

    def __repr__(self) -> str:
        return UNSET


def _or_none(kind: type) -> Any:
    """The flag type ``kind``, or :class:`_Unset` for ``none``."""
    def parse(text: str) -> Any:
        return _Unset() if text.strip().lower() == UNSET else kind(text)

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`RewardConfig` of parsed :func:`add_train_arguments` flags (config file first, flags on top);
    checked once, by the trainer."""
    from accord.reward.config import RewardConfig

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(RewardConfig.load(args.config).to_dict())
    for f in dataclasses.fields(RewardConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = None if isinstance(given, _Unset) else given
    if getattr(args, "quiet", False):
        values["progress"] = progress_of(args)  # off, or the one error of --quiet with --progress
    modules = values.get("lora_target_modules")
    if isinstance(modules, str) and "," in modules:  # --lora-target-modules q_proj,v_proj
        values["lora_target_modules"] = [m.strip() for m in modules.split(",") if m.strip()]
    return RewardConfig.from_dict(values)


def build_parser(prog: str = "accord") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Train reward models, evaluate them and score responses.")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,score,combine,calibrate}")
    train = sub.add_parser("train", help="train a reward model (the default command)",
                           usage=f"{prog} train --model PATH --train-path FILE [--output-dir DIR] [options]",
                           description="Train a reward model on a cleaned dataset or any preference layout and "
                                       "save it to --output-dir. Every flag is a field of "
                                       "accord.reward.RewardConfig.")
    add_train_arguments(train)
    ev = sub.add_parser("evaluate", help="accuracy, NLL, Brier and ECE of a saved reward model on held-out data",
                        description="Metrics of a saved reward model on held-out data of its task. A pairwise "
                                    "model: accuracy, NLL, Brier and ECE on preference pairs against their soft "
                                    "labels (and against held-out votes when the data has votes_chosen, "
                                    "votes_rejected and optionally votes_tie counts). A process reward model (--task "
                                    "steps): step accuracy, AUROC and ECE and first-error F1 on a step dataset "
                                    "(best-of-n with problem_id). A multi-attribute model (--task attributes): each "
                                    "attribute's accuracy, NLL and ECE on pairs or Spearman and RMSE on graded "
                                    "responses, and the combined reward's metrics on pairs with an overall p_chosen.")
    ev.add_argument("model_dir", help="a folder written by `accord train`")
    ev.add_argument("data", help="preference pairs (a cleaned dataset or any preference layout), a step dataset "
                    "('prompt', 'completions', 'labels') or a cleaned multi-attribute dataset, as the model's task "
                    "reads: a file (.parquet, .jsonl, .json, .csv, .tsv, compressed too: .gz, .bz2, .xz, .zst, .zip) "
                    "or a `datasets` folder (of a DatasetDict, its held-out split: test, validation, dev...)")
    ev.add_argument("--batch-size", type=int, default=32, metavar="N", help="pairs per forward pass (default: 32)")
    ev.add_argument("--max-length", type=int, default=None, metavar="N",
                    help="tokens per sequence (default: the length the model was trained with)")
    ev.add_argument("--out", metavar="FILE",
                    help="also write the metrics as JSON to this .json file (they are printed either way)")
    add_progress_flags(ev)
    sc = sub.add_parser("score", help="rewards, uncertainties and conservative rewards of responses or pairs",
                        description="Rewards of responses (a 'response' column, optionally 'prompt') or of pairs "
                                    "('chosen' and 'rejected'). A model trained with --uncertainty-head also gives "
                                    "reward_sd and the conservative reward, reward - k * reward_sd. A "
                                    "multi-attribute model (--task attributes) gives each attribute's reward and "
                                    "their combination; a process reward model (--task steps) scores a step dataset "
                                    "('prompt', 'completions'), one row per step.")
    sc.add_argument("model_dir", help="a folder written by `accord train`, or several, comma-separated: an ensemble")
    sc.add_argument("data", help="a file (or a `datasets` folder; of a DatasetDict, its one split) with a 'response' "
                    "column (and 'prompt'), or 'chosen' and 'rejected'; for a process reward model a step dataset "
                    "('prompt', 'completions')")
    sc.add_argument("--k", type=float, default=None, metavar="X",
                    help="conservative reward = reward - k * reward_sd (default: 1; needs a model trained with "
                         "--uncertainty-head, or an ensemble: then k multiplies the members' sd or variance)")
    sc.add_argument("--conservative", choices=["sd", "var", "min"], default=None,
                    help="an ensemble's conservative reward: mean - k sd (default), mean - k variance, or the "
                         "members' minimum")
    sc.add_argument("--batch-size", type=int, default=32, metavar="N", help="sequences per forward pass (default: 32)")
    sc.add_argument("--max-length", type=int, default=None, metavar="N",
                    help="tokens per sequence (default: the length the model was trained with)")
    sc.add_argument("--out", metavar="FILE",
                    help="write the scored table here (.parquet, .jsonl, .csv or .tsv, the last two compressed as "
                         "x.csv.gz, .bz2 or .xz; default: print it)")
    add_progress_flags(sc, "no progress bars (as --no-progress), and no notes on the model")
    _add_combine_parser(sub)
    cal = sub.add_parser("calibrate", help="fit a temperature on held-out pairs against their soft labels",
                         description="Fit a temperature (and with --bias a bias) on the saved model's pairwise "
                                     "log-odds against the soft labels of held-out pairs (no gold needed) and save it "
                                     "in the model's reward_model.json; evaluate and score then apply it. Prints the "
                                     "fit with the held-out pairs' ECE before and after.")
    cal.add_argument("model_dir", help="a folder written by `accord train` (a pairwise reward model)")
    cal.add_argument("data", help="held-out pairs (not trained on): a cleaned dataset or any preference layout")
    cal.add_argument("--bias", action="store_true",
                     help="also fit a bias towards the side shown as chosen (kept at 0 where the held-out labels all "
                          "favour one side, as a cleaned dataset's do)")
    cal.add_argument("--objective", choices=("evidence", "soft"), default="evidence",
                     help="evidence (default): the likelihood of the votes a rater model's soft labels summarise; "
                          "soft: cross-entropy against labels that are themselves the probability to reproduce")
    cal.add_argument("--batch-size", type=int, default=32, metavar="N", help="pairs per forward pass (default: 32)")
    cal.add_argument("--max-length", type=int, default=None, metavar="N",
                     help="tokens per sequence (default: the length the model was trained with)")
    add_progress_flags(cal)
    return parser


def _add_combine_parser(sub: Any) -> None:
    co = sub.add_parser("combine", help="combine a multi-attribute model's attributes into one reward",
                        description="Fit how a model trained with --task attributes combines its attributes into "
                                    "one reward (saved with the model; `accord score` then reports it): fixed "
                                    "weights, weights fitted to overall preferences (logistic regression), or a "
                                    "prompt-conditioned gating network; optionally with each attribute's "
                                    "correlation with the response length removed.")
    co.add_argument("model_dir", help="a folder written by `accord train --task attributes`")
    co.add_argument("data", nargs="?", help="preference pairs with the overall label (p_chosen): a cleaned dataset "
                                            "or any preference layout (needed by fitted and gating, and by "
                                            "--decorrelate-length)")
    co.add_argument("--method", choices=("fixed", "fitted", "gating"), default="fitted",
                    help="fixed weights (--weights), weights fitted to the overall labels, or a gating network on "
                         "the prompt's embedding (default: fitted)")
    co.add_argument("--weights", metavar="A=W,...", help="fixed weights, e.g. helpfulness=0.3,correctness=0.74")
    co.add_argument("--decorrelate-length", action="store_true",
                    help="remove from every attribute its linear dependence on the response length (in words)")
    # no argparse defaults: a flag the chosen method does not read is refused (fit_combination holds the defaults)
    co.add_argument("--alpha", type=float, default=None, metavar="X",
                    help="L2 penalty of the fitted weights (--method fitted; default: 1)")
    co.add_argument("--hidden", type=int, default=None, metavar="N",
                    help="hidden units of the gating network (--method gating; default: 64)")
    co.add_argument("--batch-size", type=int, default=32, metavar="N", help="sequences per forward pass (default: 32)")
    add_progress_flags(co, "no progress bars (as --no-progress), and no note on the missing data")


def _combine(args: argparse.Namespace) -> None:
    from accord.reward.attribute_combination import (
        FixedWeights,
        check_fixed_weights,
        combination_frame,
        fit_combination,
        save_combination,
    )
    from accord.reward.model import RewardModel

    progress = progress_of(args)  # (--quiet with --progress refused before any work, data or none)
    # each method reads its own setting: --alpha with gating (or --hidden with fitted) was silently ignored
    given = {"alpha": args.alpha, "hidden": args.hidden}
    for name, method in (("alpha", "fitted"), ("hidden", "gating")):
        if given[name] is not None and args.method != method:
            raise AccordError(f"--{name}: only --method {method} reads it, not the {args.method} method")
    meta = RewardModel.read_meta(args.model_dir)
    if meta.get("task") != "attributes":
        raise AccordError(f"{args.model_dir}: not a multi-attribute reward model (train it with --task attributes)")
    weights = _weights(args.weights, meta["attributes"]["names"]) if args.weights else None
    if args.method == "fixed" and not weights:
        raise AccordError("--method fixed needs --weights attribute=weight,...")
    if args.method == "fixed":
        check_fixed_weights(weights)
    if args.method != "fixed" and weights:
        raise AccordError(f"--weights: the {args.method} method learns the weights; use --method fixed")
    if args.data is None:
        if args.method != "fixed" or args.decorrelate_length:
            raise AccordError(f"data: the {args.method} method (or --decorrelate-length) learns from preference "
                              "pairs with an overall label; give a file")
        combination = FixedWeights(weights, meta["attributes"]["names"])
    else:
        combination = fit_combination(args.model_dir, args.data, args.method, weights=weights,
                                      decorrelate_length=args.decorrelate_length, batch_size=args.batch_size,
                                      progress=progress,
                                      **{name: value for name, value in given.items() if value is not None})
    path = save_combination(args.model_dir, combination)
    print(combination_frame(combination).to_string(index=False))
    print(f"wrote {path} ({combination.method} combination)")
    if args.data is None and not args.quiet:  # `accord score` then left out reward_normalised without a word
        print(f"note: no pairs given, so the combined reward's mean and sd are not known and `accord score "
              f"{args.model_dir}` gives no reward_normalised; give pairs (accord combine {args.model_dir} PAIRS "
              "--method fixed --weights ...) to measure them", file=sys.stderr)


def _weights(text: str, attributes: Sequence[str]) -> dict[str, float]:
    """``--weights a=w,...``: each weight is the number after the last '=' of its piece, and a piece without one is
    part of the next attribute's name (a name is any text: splitting at every ',' and the first '=' left "help,ful"
    and "a=b" no way to be weighted). A name is the model's attribute as written (the ratings keep spaces around a
    name, so stripping left " x" no way to be weighted), else, stripped of spaces, the one it names ("a=1, b=2")."""
    known = set(attributes)
    weights: dict[str, float] = {}
    pending: list[str] = []
    for part in text.split(","):
        pending.append(part)
        name, equals, value = ",".join(pending).rpartition("=")
        try:
            number = float(value) if equals else None
        except ValueError:
            number = None
        if number is None:
            continue
        name = name if name in known else name.strip()
        if name in weights:  # the last of the two weights won, unsaid
            raise AccordError(f"--weights: attribute '{name}' is given twice; give each attribute once")
        weights[name] = number
        pending = []
    if pending:
        raise AccordError(f"--weights: expected attribute=number, got {','.join(pending)!r}")
    return weights


def main(argv: list[str] | None = None, prog: str = "accord") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["train"] + argv
    try:
        args = parse_flags(build_parser(prog), argv, prog)
    except AccordError as err:  # before the try below, which reads args
        print(f"accord: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    from accord.reward.trainer import TrainingInterrupted

    def warning_text(warning: Warning) -> str:
        return _flag_message(warning, args) if isinstance(warning, SettingWarning) else str(warning)

    try:
        with warnings_as_lines(warning_text):
            progress_of(args)  # --quiet with --progress: refused before any work
            _one_model(args)
            _check_sizes(args)
            if args.command == "train":
                _train(args)
            elif args.command == "evaluate":
                from accord.reward.evaluate import evaluate

                metrics = evaluate(args.model_dir, args.data, batch_size=args.batch_size, max_length=args.max_length,
                                   progress=progress_of(args))
                text = json_text(metrics, indent=2)
                if args.out:
                    from accord.datasets.io import atomic_path

                    with _writing_out(args.out), atomic_path(args.out) as tmp:
                        tmp.write_text(text + "\n")
                print(text)
            elif args.command == "combine":
                _combine(args)
            elif args.command == "calibrate":
                from accord.reward.calibration import calibrate

                fitted = calibrate(args.model_dir, args.data, fit_bias=args.bias, objective=args.objective,
                                   batch_size=args.batch_size,
                                   max_length=args.max_length, progress=progress_of(args))
                print(json_text(fitted, indent=2))
            else:
                _score(args)
    except SettingError as err:
        print(f"accord: error: {_flag_message(err, args)}", file=sys.stderr)
        return EXIT_USAGE
    except AccordError as err:
        print(f"accord: error: {err}", file=sys.stderr)  # as every other accord command says it
        return EXIT_USAGE
    except TrainingInterrupted as stopped:
        print(str(stopped), file=sys.stderr)
        return 128 + stopped.signum  # 130 after Ctrl-C, 143 after SIGTERM, as a shell reports a process they end
    except KeyboardInterrupt as stopped:
        when = " before training started" if args.command == "train" else ""
        print(f"interrupted{when}: nothing written", file=sys.stderr)
        return 128 + getattr(stopped, "signum", signal.SIGINT)
    return 0


FLAGS = {"fit_bias": "bias"}  # a library keyword whose flag is another word (calibrate --bias)


def _flag_message(err: SettingError | SettingWarning, args: argparse.Namespace) -> str:
    """The message of ``err`` naming the flags of its settings: the library names its keywords ('config: max_length
    ...'), where the user typed a flag. train's settings may come from its --config file: one read from there (its
    flag not given) keeps the file's keyword, and the 'config: ' that says where it came from."""
    from_file = args.command == "train" and getattr(args, "config", None)
    flags = [FLAGS.get(setting, setting) for setting in err.settings]
    for flag in flags:
        if not hasattr(args, flag) or (from_file and getattr(args, flag) is None):
            return str(err)
    return err.naming(*("--" + flag.replace("_", "-") for flag in flags))


def _one_model(args: argparse.Namespace) -> None:
    """evaluate, calibrate and combine read one model: several joined by commas (an ensemble, as score takes them)
    were looked up as one folder named 'rm1,rm2' ("not found"). A stray comma is read as score reads it ("A," is
    A); a folder whose name has a comma is taken as it is."""
    if args.command not in ("evaluate", "calibrate", "combine") or "," not in args.model_dir:
        return
    if Path(args.model_dir).expanduser().exists():
        return
    model_dirs = [d for d in args.model_dir.split(",") if d]
    if len(model_dirs) == 1:
        args.model_dir = model_dirs[0]
    elif len(model_dirs) > 1:
        raise AccordError(f"model_dir {args.model_dir}: `accord {args.command}` takes one reward model, not the "
                          f"{len(model_dirs)} joined by commas (an ensemble is for `accord score`); "
                          f"{args.command} each model apart")


def _check_sizes(args: argparse.Namespace) -> None:
    """--batch-size and --max-length of evaluate, score, calibrate and combine (train's are the config's); an --out
    that is the data file (it would be written over) or that cannot be written (a folder, a path under a file: score
    found it in the writer, after scoring everything). A missing folder is fine: it is created, as the other
    commands' outputs are."""
    if args.command == "train":
        return
    from accord.datasets.errors import ValidationError
    from accord.datasets.io import check_output_path, refuse_writing_over_inputs

    out = getattr(args, "out", None)
    refuse_writing_over_inputs("--out", out, {"data": getattr(args, "data", None)})
    if out:
        from accord.reward.model import is_model_file

        for model_dir in str(getattr(args, "model_dir", "")).split(","):
            if model_dir and is_model_file(out, model_dir):
                raise AccordError(f"--out {out}: is a file of the model {model_dir} (its weights, config, tokenizer, "
                                  "accord's reward_*.json, the training log metrics.jsonl or a file of a training "
                                  "checkpoint); writing it would break the model or lose its record (name another "
                                  "file)")
        try:
            check_output_path(out)
        except ValidationError as err:
            verb = {"evaluate": "evaluating", "score": "scoring"}[args.command]
            raise AccordError(f"--out {out}: {err.problem} (checked before {verb})") from err
        if args.command == "evaluate" and Path(out).suffix.lower() != ".json":
            # the metrics are one JSON object: --out metrics.parquet (or .csv) was written as JSON text under that
            # name, which the suffix's reader then refused
            raise AccordError(f"--out {out}: evaluate writes its metrics as one JSON object; name a .json file")
    if getattr(args, "batch_size", 1) < 1:
        raise AccordError(f"--batch-size must be at least 1, got {args.batch_size}")
    max_length = getattr(args, "max_length", None)
    if max_length is not None and max_length < 8:
        raise AccordError(f"--max-length must be at least 8 (as in training), got {max_length}")


def _train(args: argparse.Namespace) -> None:
    from accord.reward.trainer import refuse_finished_model, train

    config = config_from_args(args)
    refuse_finished_model(config)  # a field tool keeps a finished model unless told to replace it
    result = train(config)
    if os.environ.get("RANK", "0") != "0":  # under accelerate launch / torchrun: the main process reports
        return
    print(json_text({"output_dir": str(result.output_dir), "global_step": result.global_step,
                      "train_loss": result.train_loss,
                      f"{result.unit}_per_s": round(result.examples_per_second, 2),
                      "tokens_per_s": round(result.tokens_per_second, 1), **result.truncation,
                      **({"eval": result.eval_metrics} if result.eval_metrics else {})}))


def _score(args: argparse.Namespace) -> None:
    from accord.reward.evaluate import score
    from accord.reward.ensemble import check_ensemble, ensemble_heads, score_ensemble

    if args.out:
        _table_format(Path(args.out))  # a wrong suffix fails before the scoring
    # one parse for one model and many: "A," is the model A, as "A,B," is A and B
    model_dirs = [d for d in args.model_dir.split(",") if d]
    if not model_dirs:
        raise AccordError(f"model_dir {args.model_dir!r}: names no model (give a folder, or several joined by commas)")
    if args.k is not None and not 0 <= args.k < float("inf"):
        raise AccordError(f"--k must be >= 0 and finite (how much spread to subtract), got {args.k}")
    if args.k is not None and args.conservative == "min":  # the members' minimum: k was ignored without a word
        raise AccordError("--k: --conservative min is the members' minimum and subtracts no spread; leave out --k, "
                          "or use --conservative sd or var")
    heads = [ensemble_heads(d) for d in model_dirs]
    if args.conservative and sum(heads) < 2:  # was "an ensemble needs at least 2 reward models", naming neither
        raise AccordError(f"--conservative {args.conservative}: {model_dirs[0]} is one reward model without ensemble "
                          "heads, and an ensemble needs at least 2 members: give several model folders joined by "
                          "commas, or a model trained with --ensemble-heads N")
    if len(model_dirs) > 1 or args.conservative or (args.k is not None and sum(heads) > 1):
        check_ensemble(sum(heads), args.conservative or "sd", args.k)
        table = score_ensemble(model_dirs, args.data, conservative=args.conservative or "sd",
                               k=1.0 if args.k is None else args.k, batch_size=args.batch_size,
                               max_length=args.max_length, progress=progress_of(args))
        if args.out:
            _write_table(table, Path(args.out))
        else:
            print(table.to_string(max_colwidth=40))
        return
    (model_dir,) = model_dirs
    table = score(model_dir, args.data, k=args.k, batch_size=args.batch_size, max_length=args.max_length,
                  progress=progress_of(args))
    if args.quiet:
        pass  # the notes below are advice, not results: --quiet leaves only the table (and warnings, errors)
    elif sum(heads) > 1:
        print(f"note: {model_dir} has {sum(heads)} ensemble heads and its reward is their mean; --conservative "
              "{sd,var,min} or --k scores them as an ensemble", file=sys.stderr)
    elif "p_correct" not in table.columns and not any(column.startswith("reward_sd") for column in table.columns):
        print(f"note: {model_dir} has no uncertainty head (it was trained without --uncertainty-head): no "
              "reward_sd, and its conservative reward would be the reward itself; train with --uncertainty-head for "
              "both", file=sys.stderr)
    if args.out:
        _write_table(table, Path(args.out))
    else:
        print(table.to_string(max_colwidth=40))


def _table_format(path: Path) -> str:
    from accord.datasets.io import table_suffix

    suffix = table_suffix(path)  # x.csv.gz is a .csv, compressed, as accord aggregate writes it
    # the tables accord aggregate writes (soft labels, annotators), and their other names
    formats = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
               ".tsv": "tsv"}
    # the path is score's --out: named by its flag, as aggregate's --output is (it said "file scored.txt: ...")
    if path.is_dir():
        raise AccordError(f"--out {path}: is a folder (name a file ending in .parquet, .jsonl, .csv or .tsv)")
    if suffix not in formats:
        raise AccordError(f"--out {path}: unknown suffix '{suffix}' (use .parquet, .jsonl, .csv or .tsv; .csv and "
                          f".tsv optionally compressed as x.csv.gz, .bz2 or .xz)")
    return formats[suffix]


def _write_table(table: Any, path: Path) -> None:
    from accord.datasets.io import write_table

    _table_format(path)  # a suffix this command does not write fails here
    with _writing_out(path):
        write_table(table, path)


@contextlib.contextmanager
def _writing_out(path: str | Path) -> Any:
    """An OSError while --out is written (a full disk) as one line naming it: was a pandas or pathlib traceback
    ending in "OSError: [Errno 28] No space left on device", naming no file (atomic_path leaves nothing there)."""
    from accord.datasets.io import WriteError

    try:
        yield
    except (OSError, WriteError) as err:  # WriteError: atomic_path's, which named the file but not the flag
        cause = err.reason if isinstance(err, WriteError) else err
        raise AccordError(f"--out {path}: cannot write it: {cause.strerror or cause}") from err


if __name__ == "__main__":
    sys.exit(main(prog="python -m accord.reward"))
