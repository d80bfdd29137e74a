"""Which parts of two submissions match, for the side-by-side page of a flagged pair.

Unlike the pair's score (winnowed fingerprints), this marks every run of K tokens the two
share outside the template, so the highlighted regions are contiguous and complete; it runs
only for the pairs a person will look at.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from .pairs import NEVER, own_kgrams
from .tokens import Unit
from .winnow import K, kgram_hashes


@dataclass
class Side:
    """One submission of the pair: its files' lines, with the matched column ranges."""
    sources: dict[str, str]
    marks: dict[str, dict[int, list[tuple[int, int]]]]   # file -> line -> [(start, end)]
    first_line: dict[str, tuple[str, int]]               # unit name -> (file, line)


@dataclass
class Prepared:
    """One submission ready for comparison: its sources, units and each unit's own k-gram
    hashes (template k-grams masked). Made once per submission, however many pairs it is in."""
    sources: dict[str, str]
    units: list[Unit]
    hashes: list[np.ndarray]


def prepare(sources: dict[str, str], units: list[Unit], template: np.ndarray) -> Prepared:
    return Prepared(sources, units, [own_kgrams(kgram_hashes(u.tokens), template) for u in units])


def compare_units(a: Prepared, b: Prepared):
    """(side a, side b, matching units [(unit in a, unit in b, shared runs)])."""
    shared = np.intersect1d(concat(a.hashes), concat(b.hashes))
    shared = shared[shared != NEVER]
    hits_a, hits_b = in_shared(a.hashes, shared), in_shared(b.hashes, shared)
    where_b: dict[int, list[str]] = defaultdict(list)
    for u, h, hit in zip(b.units, b.hashes, hits_b):
        for x in h[hit].tolist():
            where_b[x].append(u.name)
    pairs = []
    for u, h, hit in zip(a.units, a.hashes, hits_a):
        hits = h[hit].tolist()
        if hits:
            best = Counter(name for x in hits for name in set(where_b[x])).most_common(1)
            if best:
                pairs.append((u.name, best[0][0], len(hits)))
    return side(a, hits_a), side(b, hits_b), pairs


def concat(hashes: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(hashes + [np.zeros(0, np.uint64)])


def in_shared(hashes: list[np.ndarray], shared: np.ndarray) -> list[np.ndarray]:
    """Per unit, which of its k-grams the other side has too (one isin for all units)."""
    mask = np.isin(concat(hashes), shared)
    return np.split(mask, np.cumsum([len(h) for h in hashes])[:-1]) if hashes else []


def side(prepared: Prepared, hits: list[np.ndarray]) -> Side:
    sources = prepared.sources
    marks: dict[str, dict[int, list[tuple[int, int]]]] = {name: {} for name in sources}
    first: dict[str, tuple[str, int]] = {}
    lines_of: dict[str, list[str]] = {}
    for u, hit_mask in zip(prepared.units, hits):
        if u.spans:
            first.setdefault(u.name, (u.file, u.spans[0][0]))
        hit = np.flatnonzero(hit_mask)
        if not len(hit):
            continue
        covered = np.zeros(len(u.tokens) + 1, dtype=np.int64)
        np.add.at(covered, hit, 1)
        np.add.at(covered, hit + K, -1)
        on = np.cumsum(covered[:-1]) > 0
        lines = lines_of.setdefault(u.file, sources[u.file].splitlines())
        for start, end in runs(on):
            mark(marks.setdefault(u.file, {}), lines, u.spans[start], u.spans[end - 1])
    return Side(sources, {f: {n: merge(r) for n, r in m.items()} for f, m in marks.items()}, first)


def runs(on: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def mark(marks: dict, lines: list[str], first, last) -> None:
    """Mark from the first token's start to the last token's end, line by line."""
    (l0, c0, _, _), (_, _, l1, c1) = first, last
    for line in range(l0, l1 + 1):
        text = lines[line - 1] if line - 1 < len(lines) else ""
        start = c0 if line == l0 else len(text) - len(text.lstrip())
        end = c1 if line == l1 else len(text)
        if end > start:
            marks.setdefault(line, []).append((start, end))


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def segments(line: str, ranges: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """The line cut into (text, matched) pieces."""
    out, at = [], 0
    for s, e in ranges:
        if s > at:
            out.append((line[at:s], False))
        out.append((line[s:e], True))
        at = e
    if at < len(line) or not out:
        out.append((line[at:], False))
    return out
