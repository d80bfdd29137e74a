"""CSV cells that a spreadsheet opens as data, never as a formula.

Follows the OWASP CSV-injection guidance: a free-text cell (a name, a feedback comment)
whose first character is `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`,
which spreadsheets read as "this is text". Score and id cells are not escaped but
validated: a score must be a finite number and an id must look like an id, so the LMS still
parses them, and a bad value stops the export with a sentence instead of being quoted.

Why not `defusedcsv`: it escapes every cell of a row, so callers cannot tell text from a
score; it does not cover a leading tab or carriage return (both in the OWASP list); and it
rewrites `|` inside text to `\\|`, which would change a student's feedback comment. A guard
on the free-text cells only is a few lines and says exactly what it does.
"""
from __future__ import annotations

import math
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+\-]*$")


class CellError(ValueError):
    """A score or id cell holds something the LMS would not parse."""


def text(value: object) -> str:
    """A free-text cell: neutralised when it could start a formula."""
    s = "" if value is None else str(value)
    return "'" + s if s.startswith(FORMULA_START) else s


def score(value: object, *, places: int = 2) -> str:
    """A number cell: '17.5', '20', '' for None; anything else is refused."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CellError(f"score {value!r} is not a number")
    if not math.isfinite(value):
        raise CellError(f"score {value!r} is not a finite number")
    s = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def identifier(value: object, *, what: str = "id") -> str:
    """An id cell (login, SIS id, email): passed through when it looks like one, else refused."""
    if value is None or value == "":
        return ""
    s = str(value).strip()
    if not IDENTIFIER.match(s):
        raise CellError(f"{what} {s!r} is not a plain identifier (letters, digits, _ . @ : + -)")
    return s


def integer(value: object, *, what: str = "id") -> str:
    """A numeric id cell such as Canvas's user ID: digits only, or blank."""
    if value is None or value == "":
        return ""
    s = str(value).strip()
    if not s.isdigit() or not s.isascii():
        raise CellError(f"{what} {s!r} is not a whole number")
    return s
