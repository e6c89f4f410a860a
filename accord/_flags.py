"""Flags every long-running command takes alike (a light module: the command lines import it without torch)."""

from __future__ import annotations

import argparse

from accord.datasets.errors import AccordError


def add_progress_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                       quiet_help: str = "no progress bars, as --no-progress", *, quiet: bool = True) -> None:
    """``--quiet`` (``quiet_help`` says what else it silences) and ``--progress/--no-progress``, as every long-running
    command takes them: only train, evaluate and score took ``--no-progress``, and a script passing it to calibrate,
    combine, aggregate, report, suggest or demo was refused ('unrecognized arguments'). ``quiet=False``: the parser
    has its own ``--quiet``."""
    if quiet:
        parser.add_argument("--quiet", action="store_true", help=quiet_help)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: on)")


def progress_of(args: argparse.Namespace, default: bool = True) -> bool:
    """Whether to draw bars: ``--progress/--no-progress``, else not ``--quiet``, else ``default``; ``--quiet`` with
    ``--progress`` is one error."""
    quiet, progress = getattr(args, "quiet", False), getattr(args, "progress", None)
    if quiet and progress:
        raise AccordError("--quiet and --progress: one says no progress bars, the other asks for them; give one")
    if progress is not None:
        return bool(progress)
    return False if quiet else default
