"""One rule for the values users give graceful, wherever they give them.

Seconds are a finite number (``int`` or ``float``, never ``bool``; text only where
the value comes from a flag or a variable), within the bounds of the option; NaN
and infinity are refused everywhere (``None`` is how an option says "no limit").
Every refusal is one line that names the option as the user spelled it, what it
must be, what it got, and an example of a good value.

Loaded before the init's fork: stdlib ``math`` only.
"""

from __future__ import annotations

import math

from ._errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def seconds(
    value: Any,
    what: str,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = False,
    example: str = "",
    text: bool = False,
) -> float:
    """``value`` as float seconds, or :class:`UsageError`.

    ``low_open``: ``low`` itself is refused (``> 0`` rather than ``>= 0``); ``text``:
    a string holding a number is read too (flags and environment variables).
    """
    number = math.nan
    if not isinstance(value, bool) and (
        isinstance(value, (int, float)) or (text and isinstance(value, str))
    ):
        try:
            number = float(value)
        except ValueError:
            pass
    hint = f"; use e.g. {example}" if example else ""
    if math.isnan(number):
        raise UsageError(f"{what} must be a number of seconds, got {value!r}{hint}")
    if not ((number > low if low_open else number >= low) and number <= high) or math.isinf(number):
        if math.isinf(high):
            bound = f"seconds {'>' if low_open else '>='} {low:g}"
        else:
            bound = f"between {low:g} and {high:g} seconds"
        raise UsageError(f"{what} must be {bound}, got {value!r}{hint}")
    return number


def flag(value: Any, what: str) -> bool:
    """``value`` if it is ``True`` or ``False``, else :class:`UsageError`."""
    if not isinstance(value, bool):
        raise UsageError(f"{what} must be True or False, got {value!r}")
    return value


def count(value: Any, what: str, *, low: int = 0, example: str = "") -> int:
    """``value`` if it is an ``int`` (not ``bool``) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        hint = f"; e.g. {example}" if example else ""
        raise UsageError(f"{what} must be an int >= {low}, got {value!r}{hint}")
    return value
