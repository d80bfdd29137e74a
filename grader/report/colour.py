"""ANSI colour for terminal output, only where the terminal wants it.

Rules, in order: NO_COLOR set to anything non-empty turns colour off (no-color.org);
FORCE_COLOR non-empty turns it on (for CI logs that render ANSI); TERM=dumb turns it off;
otherwise colour is on only when the stream is a terminal. Small enough to need no
library, and importing it costs nothing, which matters for `nngrader check`'s start-up.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

CODES = {"pass": "32", "fail": "31", "error": "33", "timeout": "33", "skipped": "90",
         "bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34"}


def supports_colour(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether to write ANSI colour codes to stream (default stdout)."""
    env = os.environ if env is None else env
    stream = sys.stdout if stream is None else stream
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def paint(text: str, style: str, enabled: bool) -> str:
    """text wrapped in the ANSI code for style (a status or a colour name) when enabled."""
    code = CODES.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text
