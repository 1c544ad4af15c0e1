"""Numbers on the command line, checked as settings.py checks the environment's: a finite
number within its bounds, or argparse's usage error naming the option (exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def number(
    kind: type[N],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> Callable[[str], N]:
    """An argparse `type=`: `kind` (int or float) from the text, at least `minimum`, at most
    `maximum`, and greater than `above`. NaN and infinities are refused: every comparison
    with NaN is false, so a bound alone would let it through."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            whole = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {whole}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text} must be more than {above:g}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum:g}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be at most {maximum:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid … value" errors
    return parse


def positive(kind: type[N]) -> Callable[[str], N]:
    return number(kind, above=0)


PORT = number(int, minimum=0, maximum=65535)
PERCENT = number(float, minimum=0, maximum=100)


def size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, e.g. 1280x720, as (width, height)."""
    width, x, height = text.lower().partition("x")
    if not (x and width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: use WIDTHxHEIGHT, e.g. 1280x720")
    return int(width), int(height)
