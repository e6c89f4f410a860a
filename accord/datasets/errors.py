"""The package's error type.

Every problem with a user's input surfaces as :class:`AccordError` (or a subclass) whose message is one line
naming where the problem is (file, column, row) and the offending value. The command line prints that line and
exits with status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class AccordError(ValueError):
    """A problem with the user's input or settings, reported in one line."""


class ValidationError(AccordError):
    """The judgments table (or a file that should hold one) breaks the schema."""

    #: required columns missing besides ``column`` (set where a table lacks several), so that advice on renaming
    #: names them all: told one at a time, each missing column took the user one more run
    also_missing: tuple[str, ...] = ()

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        column: str | None = None,
        row: Any = None,
        value: Any = None,
    ) -> None:
        parts = []
        if source:
            parts.append(f"file {source}")
        if column is not None:
            parts.append(f"column '{column}'")
        if row is not None:
            parts.append(f"row {row}")
        where = ", ".join(parts)
        message = f"{where}: {problem}" if where else problem
        if value is not None:
            message += f" (value: {_short_repr(value)})"
        super().__init__(message.replace("\n", " "))
        self.problem = problem
        self.source = source
        self.column = column
        self.row = row
        self.value = value

    def missing_too(self, columns: Any) -> ValidationError:
        """This error, recording the required ``columns`` missing besides its own (:attr:`also_missing`)."""
        self.also_missing = tuple(columns)
        return self


class SettingError(AccordError):
    """A setting's value cannot work. The message names the setting by the library's keyword (``max_length``);
    the command line, whose user typed a flag, asks for it naming the flag instead (:meth:`naming`).

    ``message`` takes one name per setting it is about: ``setting``, then ``others`` (``freeze_layers`` and
    ``lora``, say). ``where`` leads the library's message alone (``"config: "``: a flag needs no such word)."""

    def __init__(self, setting: str, message: Callable[..., str], *others: str, where: str = "") -> None:
        super().__init__(where + message(setting, *others))
        self.setting = setting
        self.settings = (setting, *others)
        self._message = message

    def naming(self, *names: str) -> str:
        """The message with the settings called ``names``, in the order of :attr:`settings` (``--max-length`` on
        the command line)."""
        return self._message(*names)


class SettingWarning(UserWarning):
    """A warning about a setting's value (responses cut at ``max_length``), naming it as :class:`SettingError` does:
    by the library's keyword, or on the command line by its flag (:meth:`naming`)."""

    def __init__(self, setting: str, message: Callable[..., str], *others: str) -> None:
        super().__init__(message(setting, *others))
        self.settings = (setting, *others)
        self._message = message

    def naming(self, *names: str) -> str:
        return self._message(*names)


@contextmanager
def naming_file(source: str | os.PathLike | None) -> Iterator[None]:
    """A :class:`ValidationError` raised inside that names no file names ``source`` (a path; ``None``: a frame,
    nothing to name): the checks made while data is encoded, after it was read (a chat template refusing a prompt),
    named the column and row but not the file, which of --train-path and --eval-path held it."""
    try:
        yield
    except ValidationError as error:
        if error.source is not None or source is None:
            raise
        raise ValidationError(error.problem, source=str(source), column=error.column, row=error.row,
                              value=error.value) from error


@contextmanager
def warnings_as_lines(text: Callable[[Warning], str] = str) -> Iterator[None]:
    """Show warnings as the command line shows its errors, one line ``accord: warning: ...`` (``text`` gives the
    message, e.g. a :class:`SettingWarning` naming its flags): Python's default was ``file:line: UserWarning: ...``
    followed by the line of accord's source that warned."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        words = text(message) if isinstance(message, Warning) else str(message)
        source = _warned_by(filename)  # another library's warning says whose it is: not accord's to explain
        print(f"accord: warning{f' ({source})' if source else ''}: {' '.join(words.split())}",
              file=file or sys.stderr, flush=True)

    with warnings.catch_warnings():  # restores the caller's showwarning (a session's, pytest's) on the way out
        warnings.showwarning = show
        yield


def _warned_by(filename: str) -> str:
    """The package whose code warned from ``filename`` (``transformers``, ``torch``), or "" for accord's own."""
    path = Path(filename).resolve()
    if path.is_relative_to(_ACCORD_DIR):
        return ""
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".py")
    return path.stem


_ACCORD_DIR = Path(__file__).resolve().parents[1]


class FitError(AccordError):
    """A model fit diverged, produced NaN, or did not converge when convergence was required."""


def as_written(value: Any) -> Any:
    """A value read from a table as a message shows it: 7, not numpy's np.int64(7)."""
    import numpy as np  # (accord.datasets has loaded it by the time a message is written)

    return value.item() if isinstance(value, np.generic) else value


def _short_repr(value: Any, limit: int = 80) -> str:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalars: show 2, not np.int64(2)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
