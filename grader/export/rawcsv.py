"""A CSV reader that keeps each cell's original bytes, for editing a file in place.

Python's csv module reads values but forgets how they were written (quoted or not, which
line ending), so writing a downloaded worksheet back through it would change cells nobody
meant to touch. Here a record is a list of raw cell strings plus the text that ended it;
joining them with commas gives back the original text exactly, and only the cells we
replace are re-encoded.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Record:
    cells: list[str]      # raw text of each cell, quotes included
    end: str              # "\r\n", "\n", "\r" or "" at end of file

    def value(self, i: int) -> str:
        return decode(self.cells[i]) if i < len(self.cells) else ""

    def text(self) -> str:
        return ",".join(self.cells) + self.end


def decode(raw: str) -> str:
    """The value of a raw cell: outer quotes removed, doubled quotes undone."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw


def encode(value: str, *, like: str = "") -> str:
    """A raw cell for value, quoted when it must be or when the cell it replaces was."""
    needs = any(ch in value for ch in ',"\r\n') or value != value.strip()
    if needs or like.startswith('"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def parse(text: str) -> list[Record]:
    """Split text into records; `"".join(r.text() for r in parse(t)) == t` always holds."""
    records, cells, i, n = [], [], 0, len(text)
    start = 0
    while i <= n:
        if i < n and text[i] == '"' and i == start:
            i = _skip_quoted(text, i)
            continue
        if i == n or text[i] in ",\r\n":
            cells.append(text[start:i])
            if i == n:
                if cells != [""]:  # text that ends in a line break has no last record
                    records.append(Record(cells, ""))
                break
            if text[i] == ",":
                i += 1
            else:
                end = "\r\n" if text.startswith("\r\n", i) else text[i]
                records.append(Record(cells, end))
                cells, i = [], i + len(end)
            start = i
            continue
        i += 1
    return records


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the closing quote of the quoted cell starting at i."""
    i += 1
    while i < len(text):
        if text[i] == '"':
            if text.startswith('""', i):
                i += 2
                continue
            return i + 1
        i += 1
    return i
