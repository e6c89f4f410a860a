"""Command line of the reward trainer: ``python -m accord.reward`` (or ``accelerate launch -m accord.reward``).

    python -m accord.reward --model all-MiniLM-L6-v2 --train-path cleaned.parquet --output-dir rm
    python -m accord.reward train --config reward.json --max-steps 100        # flags override the config file
    python -m accord.reward evaluate rm held_out.parquet [--out metrics.json]
    python -m accord.reward score rm responses.jsonl --k 1.0 --out scored.parquet

Every :class:`accord.reward.RewardConfig` field is a flag (``--batch-size``, ``--loss``, ``--no-packing``, ...).
Problems with the input print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

from accord.datasets.errors import AccordError

COMMANDS = ("train", "evaluate", "score")


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


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`RewardConfig` field, all defaulting to "not given" (so a config file can fill them)."""
    from accord.reward.config import RewardConfig

    parser.add_argument("--config", help="a JSON (or YAML) file of RewardConfig settings; flags override it")
    for f in dataclasses.fields(RewardConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(f.type)
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.upper())


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`RewardConfig` of parsed :func:`add_train_arguments` flags (config file first, flags on top)."""
    from accord.reward.config import RewardConfig

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(RewardConfig.load(args.config).to_dict())
    for f in dataclasses.fields(RewardConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    modules = values.get("lora_target_modules")
    if isinstance(modules, str) and "," in modules:  # --lora-target-modules q_proj,v_proj
        values["lora_target_modules"] = [m.strip() for m in modules.split(",") if m.strip()]
    config = RewardConfig.from_dict(values)
    config.validate(require_data=True)
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m accord.reward", description=__doc__.split("\n\n")[0],
                                     epilog="Every training flag is a field of accord.reward.RewardConfig, documented "
                                            "there with its default.")
    sub = parser.add_subparsers(dest="command")
    add_train_arguments(sub.add_parser("train", help="train a reward model (the default command)"))
    ev = sub.add_parser("evaluate", help="accuracy, NLL, Brier and ECE of a saved reward model on pairs")
    ev.add_argument("model_dir")
    ev.add_argument("data", help="a cleaned dataset or any preference layout (vote columns add vote metrics)")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--max-length", type=int, default=None)
    ev.add_argument("--out", help="write the metrics as JSON here (default: print them)")
    sc = sub.add_parser("score", help="rewards, uncertainties and conservative rewards of responses or pairs")
    sc.add_argument("model_dir")
    sc.add_argument("data", help="a file with a 'response' column (and 'prompt'), or 'chosen' and 'rejected'")
    sc.add_argument("--k", type=float, default=1.0, help="conservative reward = reward - k * sd (default 1.0)")
    sc.add_argument("--batch-size", type=int, default=32)
    sc.add_argument("--max-length", type=int, default=None)
    sc.add_argument("--out", help="write the scored table here (.parquet, .jsonl or .csv; default: print it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        argv = ["train"] + argv
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            from accord.reward.trainer import train

            result = train(config_from_args(args))
            if os.environ.get("RANK", "0") != "0":  # under accelerate launch / torchrun: the main process reports
                return 0
            print(json.dumps({"output_dir": str(result.output_dir), "global_step": result.global_step,
                              "train_loss": result.train_loss, "pairs_per_s": round(result.pairs_per_second, 2),
                              "tokens_per_s": round(result.tokens_per_second, 1), **result.truncation,
                              **({"eval": result.eval_metrics} if result.eval_metrics else {})}, default=float))
        elif args.command == "evaluate":
            from accord.reward.evaluate import evaluate

            metrics = evaluate(args.model_dir, args.data, batch_size=args.batch_size, max_length=args.max_length)
            text = json.dumps(metrics, indent=2)
            if args.out:
                Path(args.out).write_text(text + "\n")
            print(text)
        else:
            from accord.reward.evaluate import score

            table = score(args.model_dir, args.data, k=args.k, batch_size=args.batch_size, max_length=args.max_length)
            if args.out:
                _write_table(table, Path(args.out))
            else:
                print(table.to_string(max_colwidth=40))
    except AccordError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _write_table(table: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        table.to_parquet(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        table.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        raise AccordError(f"file {path}: unknown suffix '{suffix}' (use .parquet, .jsonl or .csv)")


if __name__ == "__main__":
    sys.exit(main())
