"""Counts in messages, said as one says them: ``1 pair``, ``2 pairs``."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is 1 (``plural`` where it is not ``noun + "s"``); the count
    with thousands separators, as accord's messages print counts. ('1 pairs' was printed wherever a count was 1.)"""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
