"""Flags every long-running command takes alike (a light module: the command lines import it without torch)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator
from contextlib import contextmanager

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


def parse_flags(parser: argparse.ArgumentParser, argv: list[str], prog: str = "accord") -> argparse.Namespace:
    """``parser.parse_args(argv)``, but flags the command does not take are one :class:`AccordError` line naming,
    for each, the command's flag it most likely meant: argparse printed its usage block and "unrecognized
    arguments: --methods dawid-skene", naming no flag to give (aggregate takes --method where report takes
    --methods). A misspelt required flag is the same line: it was argparse's usage block and "the following
    arguments are required: --output-dir", the flag typed unnamed; a required flag left out is still that error."""
    with _required_off(parser):  # so that the unknown flags are found before the required ones are missed
        args, extra = parser.parse_known_args(argv)
    if not extra:
        return parser.parse_args(argv)  # required flags as required again: one left out is argparse's error
    names = [prog]
    while True:  # the (sub)command the line chose: its flags are the ones to compare with
        subs = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if chosen not in (subs[0].choices if subs else {}):
            break
        parser = subs[0].choices[chosen]
        names.append(chosen)
    flags = [flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")]
    meant = []
    for word in extra:
        if word.startswith("--"):
            close = difflib.get_close_matches(word.split("=")[0].replace("_", "-"), flags, n=1, cutoff=0.7)
            if close:
                meant.append(f"{word.split('=')[0]}: did you mean {close[0]}?")
    hint = f"; {'; '.join(meant)}" if meant else ""
    raise AccordError(f"unrecognized arguments: {' '.join(extra)}{hint} ({' '.join(names)} -h lists the "
                      "flags)")


@contextmanager
def _required_off(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Within it, no flag of ``parser`` or of its subcommands' parsers (nor a group of flags) is required."""
    parsers, held = [parser], {}
    while parsers:
        each = parsers.pop()
        for action in each._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings and action.required:
                held[id(action)] = action
        held.update((id(group), group) for group in each._mutually_exclusive_groups if group.required)
    for item in held.values():
        item.required = False
    try:
        yield
    finally:
        for item in held.values():
            item.required = True
