"""k-gram hashes of a unit's tokens and the winnowing that picks its fingerprints.

Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003, the method behind MOSS): hash every
run of K tokens, slide a window of W hashes along them and keep the smallest hash of each
window. Two units that share a run of at least K + W - 1 tokens are guaranteed to share a
fingerprint; runs shorter than K tokens (`self.x = x`) never count. Hashes are computed
with numpy over a stable per-token CRC, so the same code gets the same fingerprints in
every run and on every machine (Python's own str hash is salted per process).
"""
from __future__ import annotations

import zlib

import numpy as np

K = 10   # tokens per k-gram: shorter shared runs are idioms, not copying
W = 6    # window: every shared run of K + W - 1 = 15 tokens is found

NEVER = np.uint64(0xFFFFFFFFFFFFFFFF)  # a k-gram that must never be a fingerprint
_SEPARATOR = 0xFFFFFFFFFF             # a token id no CRC-32 can be
_MULT = np.uint64(0x100000001B3)   # FNV-style odd multiplier for the rolling combination
_ids: dict[str, int] = {}


def token_ids(tokens) -> np.ndarray:
    """A stable 32-bit id per token text (CRC-32, cached)."""
    get = _ids.get
    out = []
    for t in tokens:
        i = get(t)
        if i is None:
            i = _ids[t] = zlib.crc32(t.encode("utf-8"))
        out.append(i)
    return np.asarray(out, dtype=np.uint64)


def kgram_hashes(tokens, k: int = K) -> np.ndarray:
    """One 64-bit hash per run of k consecutive tokens (empty when there are fewer)."""
    return _hash_runs(token_ids(tokens), k)


def joined_kgram_hashes(units: list, k: int = K, w: int = W) -> np.ndarray:
    """The k-gram hashes of several token lists in one numpy pass, laid end to end with
    NEVER where a k-gram would span two lists. The NEVER runs are longer than a window, so
    no window sees two lists: what winnowing picks in each list depends on that list
    alone (its own picks, plus the minima of the windows that reach into the gap at its
    ends), and reordering the lists does not change the fingerprints."""
    gap = max(k, w)
    separator = np.full(gap, _SEPARATOR, dtype=np.uint64)
    parts = [separator]  # a gap before every list, the first too: each is winnowed alike
    for tokens in units:
        parts += [token_ids(tokens), separator]
    ids = np.concatenate(parts)
    h = _hash_runs(ids, k)
    seps = np.concatenate([[0], np.cumsum(ids == _SEPARATOR)])
    return np.where(seps[k:] - seps[:-k] > 0, NEVER, h)


def _hash_runs(ids: np.ndarray, k: int) -> np.ndarray:
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * _MULT + ids[j:j + n] + np.uint64(j + 1)
        return mix(h)


def mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the bits so window minima fall evenly."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def winnow(hashes: np.ndarray, w: int = W) -> np.ndarray:
    """Indices of the fingerprints: the rightmost minimum of every window of w hashes
    (all of them when the unit is shorter than one window)."""
    n = len(hashes)
    if n <= w:
        return np.arange(n)
    windows = np.lib.stride_tricks.sliding_window_view(hashes[::-1], w)
    # argmin on the reversed array finds the rightmost minimum of each window
    picks = n - 1 - (np.arange(len(windows)) + windows.argmin(axis=1))
    return np.unique(picks)
