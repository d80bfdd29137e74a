"""Fingerprint every submission of a folder and find the pairs that share code.

Each submission is read as `nngrader grade` reads it (same discovery, same ids, notebooks
as their code cells), cut into units and winnowed. Fingerprints of the template files are
removed first, and so are fingerprints found in so many submissions that they are the
assignment's idiom rather than anybody's copy (MOSS's `-m`). An inverted index from
fingerprint to submissions then yields exactly the pairs that share something, so the
work grows with how much code is shared, not with the square of the class.

similarity(a, b) = shared fingerprints / fingerprints of the smaller of the two (at least
MIN_FINGERPRINTS): symmetric, 1.0 for a copy however much the copier added around it
(Jaccard would halve when the copy doubles in length), and a submission that is almost all
template cannot reach a high score on a handful of lines.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from .. import load
from .tokens import Unit, units
from .winnow import K, NEVER, joined_kgram_hashes, kgram_hashes, winnow

PARALLEL_FROM = 200        # fewer submissions than this are read in this process
MIN_FINGERPRINTS = 20      # denominator floor: below this a submission has too little own code
COMMON_MIN, COMMON_FRACTION = 20, 0.10  # a fingerprint in more submissions than this is idiom
EMPTY = np.zeros(0, dtype=np.uint64)


@dataclass
class Doc:
    id: str
    path: Path
    fingerprints: np.ndarray = field(default_factory=lambda: EMPTY)  # sorted, unique
    read: tuple | None = None  # (sources, units) when read in this process: pair pages reuse them


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float
    shared: int
    flagged: bool


@dataclass
class Comparison:
    docs: list[Doc]
    pairs: list[Pair]            # highest similarity first
    threshold: float
    templates: list[str]
    notes: list[str]             # one sentence per submission or template that could not be read
    elapsed_s: float = 0.0
    common: int = 0              # fingerprints dropped as idiom
    template: np.ndarray = field(default_factory=lambda: EMPTY)

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def doc(self, sid: str) -> Doc:
        return next(d for d in self.docs if d.id == sid)


# ---------------------------------------------------------------- fingerprints

def template_hashes(paths: list[Path]) -> tuple[np.ndarray, list[str]]:
    """Every k-gram hash of the template files (not only the winnowed ones, so that no
    piece of the skeleton can survive as a student's fingerprint)."""
    found, notes = [EMPTY], []
    for path in paths:
        try:
            sources = load.read_sources(Path(path))
        except load.LoadProblem as e:
            notes.append(f"template {e}")
            continue
        for name, src in sources.items():
            found.extend(kgram_hashes(u.tokens) for u in units(src, name))
    return np.unique(np.concatenate(found)), notes


def fingerprints(doc_units: list[Unit], template: np.ndarray) -> np.ndarray:
    """The submission's winnowed fingerprints outside the template, sorted and unique."""
    h = own_kgrams(joined_kgram_hashes([u.tokens for u in doc_units]), template)
    picked = h[winnow(h)]
    return np.unique(picked[picked != NEVER])


def own_kgrams(h: np.ndarray, template: np.ndarray, k: int = K) -> np.ndarray:
    """The k-gram hashes with every k-gram that touches template code set to NEVER.

    Removing only the template's own k-grams would leave those that straddle a template
    line and the student's first tokens after it (`...) : ; V = V .`), which every
    solution shares; only runs of K tokens that are wholly the student's count."""
    if not len(template) or not len(h):
        return h
    hit = np.flatnonzero(np.isin(h, template))
    if not len(hit):
        return h
    edges = np.zeros(len(h) + k, dtype=np.int64)   # tokens covered by a template k-gram
    np.add.at(edges, hit, 1)
    np.add.at(edges, hit + k, -1)
    covered = np.cumsum(edges[:-1]) > 0
    before = np.concatenate([[0], np.cumsum(covered)])
    touches = before[k:] - before[:-k] > 0          # one per k-gram
    return np.where(touches, NEVER, h)


def read_units(path: Path) -> tuple[dict[str, str], list[Unit]]:
    """The submission's sources (as `grade` reads them) and their units; LoadProblem."""
    sources = load.read_sources(Path(path))
    return sources, [u for name, src in sources.items() for u in units(src, name)]


def read_doc(path: Path, sid: str, template: np.ndarray, keep: bool = False) -> Doc | str:
    """The submission's fingerprints (and, with `keep`, what was read), or a sentence
    saying why it could not be read."""
    try:
        read = read_units(path)
    except load.LoadProblem as e:
        return f"{sid}: {e}"
    return Doc(sid, Path(path), fingerprints(read[1], template), read if keep else None)


class Reader:
    """Submissions fingerprinted ahead of `compare`, one at a time while a batch grades
    (each right after its result, its source still parsed): the comparison at the end then
    reads only what this did not. Only for a class small enough to keep what it read."""

    def __init__(self, templates: list[Path]):
        self.templates = [str(t) for t in templates]
        self.template, self.notes = template_hashes(templates)
        self.docs: dict[tuple[str, str], Doc | str] = {}

    def add(self, path: Path, sid: str) -> None:
        if len(self.docs) >= PARALLEL_FROM:
            return
        try:
            self.docs[(str(path), sid)] = read_doc(Path(path), sid, self.template, keep=True)
        except Exception:  # noqa: BLE001 - read again at the end, where failures are reported
            pass


def read_docs(entries: list[tuple[Path, str]], template: np.ndarray, jobs: int,
              known: dict | None = None) -> list:
    """read_doc for every entry, in order; on `jobs` processes for a large class; what
    `known` holds (Reader.docs) is not read again."""
    known = known or {}
    if len(known) >= len(entries) * 0.5:  # mostly read already: the rest here, no process pool
        return [known.get((str(p), sid)) or read_doc(p, sid, template, keep=True) for p, sid in entries]
    if jobs <= 1 or len(entries) < PARALLEL_FROM:
        return [read_doc(p, sid, template, keep=True) for p, sid in entries]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    # spawn, not fork: the grading run that calls this may still hold threads
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(read_doc, [p for p, _ in entries], [s for _, s in entries],
                             [template] * len(entries), chunksize=32))


# ---------------------------------------------------------------- pairs

def common_hashes(docs: list[Doc], cap: int) -> np.ndarray:
    """Fingerprints found in more than `cap` submissions."""
    if not docs:
        return EMPTY
    values, counts = np.unique(np.concatenate([d.fingerprints for d in docs] + [EMPTY]),
                               return_counts=True)
    return values[counts > cap]


def shared_counts(docs: list[Doc]) -> Counter:
    """(i, j) -> number of fingerprints documents i < j share, through an inverted index:
    only fingerprints held by two or more submissions cost anything."""
    all_fp = np.concatenate([d.fingerprints for d in docs] + [EMPTY])
    owner = np.repeat(np.arange(len(docs)), [len(d.fingerprints) for d in docs])
    order = np.argsort(all_fp, kind="stable")
    all_fp, owner = all_fp[order], owner[order]
    _, starts, counts = np.unique(all_fp, return_index=True, return_counts=True)
    # Many fingerprints are held by exactly the same group (a copied function is many
    # fingerprints, all in the same submissions): count each distinct group once.
    groups = Counter(tuple(owner[s:s + c].tolist()) for s, c in zip(starts, counts) if c > 1)
    shared: Counter = Counter()
    for group, weight in groups.items():
        for pair in combinations(group, 2):
            shared[pair] += weight
    return shared


def score(shared: int, n_a: int, n_b: int) -> float:
    return min(1.0, shared / max(min(n_a, n_b), MIN_FINGERPRINTS))


def compare(entries: list[tuple[Path, str]], templates: list[Path], threshold: float,
            minimum: float | None = None, jobs: int = 1, reader: Reader | None = None) -> Comparison:
    """Compare every pair of (path, id) submissions. Pairs at or above `minimum` are
    listed (default: the threshold, i.e. flagged pairs only); 0 lists every pair.
    `reader`: submissions already read with these templates (Reader)."""
    start = time.monotonic()
    if reader is not None and reader.templates == [str(t) for t in templates]:
        template, notes, known = reader.template, list(reader.notes), reader.docs
    else:
        (template, notes), known = template_hashes(templates), None
    docs: list[Doc] = []
    for doc in read_docs(entries, template, jobs, known):
        if isinstance(doc, str):
            notes.append(doc)
        else:
            docs.append(doc)
    cap = max(COMMON_MIN, math.ceil(COMMON_FRACTION * len(docs)))
    common = common_hashes(docs, cap)
    if len(common):
        for d in docs:
            d.fingerprints = d.fingerprints[~np.isin(d.fingerprints, common)]
    shared = shared_counts(docs)
    floor = threshold if minimum is None else minimum
    pairs = []
    candidates = combinations(range(len(docs)), 2) if floor <= 0 else shared.keys()
    for i, j in candidates:
        s = shared.get((i, j), 0)
        sim = round(score(s, len(docs[i].fingerprints), len(docs[j].fingerprints)), 3)
        if sim >= floor:
            a, b = sorted((docs[i].id, docs[j].id))
            pairs.append(Pair(a, b, sim, s, sim >= threshold))
    pairs.sort(key=lambda p: (-p.similarity, p.a, p.b))
    return Comparison(docs, pairs, threshold, [str(t) for t in templates], notes,
                      time.monotonic() - start, len(common), template)


def folder_entries(folder: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """The submissions of a folder with the ids `nngrader grade` gives them."""
    paths, skipped = load.discover(Path(folder))
    ids = load.submission_ids(paths)
    return [(p, ids[p]) for p in paths], skipped
