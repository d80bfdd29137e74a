"""Grading a whole folder: the content-hash cache, resuming, and where submissions run.

A submission is regraded only when its bytes, the rubric (Rubric.digest) or the grader
version changed: the three are hashed into `meta.cache_key` of its result.json, and a
result whose key matches is read back instead of graded (`force` regrades everything).
result.json is written last and atomically (temp file, fsync, rename), after the
feedback pages, so a batch stopped at any instant (Ctrl-C, SIGKILL, a power cut) leaves
every finished result complete and loses none: the next run picks up where it stopped.
Results of internal grader failures carry no key and are retried. The instructor's
overrides (OUT/overrides.csv, grader/overrides.py) are re-applied to every result, new or
from the cache, so they survive regrades; a cached result they change is rewritten.

Submissions run on an executor: `LocalExecutor` (threads, each waiting on its own
sandboxed run) or `DaskExecutor` (a dask.distributed cluster; each worker runs the same
pipeline and sandbox on a copy of the submission's files and sends result.json back).
Either way results come back as they finish and are written here, by the one client.
"""
from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import __version__, load, overrides
from .judge import INTERNAL
from .load import tree_files
from .result import Result
from .rubric import Rubric



@dataclass(frozen=True)
class Job:
    path: Path
    sid: str
    key: str  # cache key: submission bytes + rubric digest + grader version


@dataclass
class Batch:
    results: list[Result]
    skipped: list[str]
    elapsed_s: float
    graded: int = 0                  # graded in this run (the rest came from the cache)
    cached: int = 0
    interrupted: bool = False
    pending: list[str] = field(default_factory=list)  # ids not graded when interrupted


# ---------------------------------------------------------------- the content-hash cache

def content_digest(path: Path) -> str:
    """sha256 of what the grader reads of a submission: a file's bytes, or a folder's
    files (relative names and bytes, in sorted order)."""
    h = hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        for p in tree_files(path):
            rel = p.relative_to(path).as_posix().encode()
            h.update(b"F" + len(rel).to_bytes(4, "big") + rel)
            update_file(h, p)
    elif path.exists():
        update_file(h, path)
    return h.hexdigest()


def update_file(h, path: Path) -> None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        data = b"\xffunreadable"
    h.update(len(data).to_bytes(8, "big") + data)


def cache_key(path: Path, rubric: Rubric, isolation: str = "") -> str:
    """What a result depends on: the submission's bytes, the rubric, the grader's version
    and the sandbox it ran in (a result from a weaker tier is not reused by a stricter run)."""
    h = hashlib.sha256()
    for part in (content_digest(path), rubric.digest, __version__, isolation):
        h.update(part.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def cached(out: Path, job: Job) -> Result | None:
    """The finished result for this exact content, rubric and version, if there is one."""
    path = out / job.sid / "result.json"
    try:
        result = Result.read(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, or not a result we wrote (a torn file cannot exist)
    meta = result.meta if isinstance(result.meta, dict) else {}
    return result if meta.get("cache_key") == job.key and result.id == job.sid else None


def final(result: Result, key: str) -> Result:
    """Stamp the cache key on a result, unless the grader (not the student) failed, for the
    whole submission or in one check: those are retried next time."""
    if result.error and result.error.startswith(INTERNAL):
        return result
    if any(c.message.startswith(INTERNAL) for c in result.checks):
        return result
    return result.with_meta(cache_key=key)


def sweep_temp_files(folder: Path) -> None:
    """Temp files of a write that a kill interrupted (write_atomic names them .NAME.*.tmp)."""
    for p in folder.glob(".*.tmp"):
        p.unlink(missing_ok=True)


# ---------------------------------------------------------------- the batch

def run_batch(folder: Path, out: Path, rubric: Rubric, executor, *, force: bool = False,
              write: Callable[[Result, Path], None] | None = None,
              refresh: Callable[[Result, Path], None] | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[Result], None] | None = None) -> Batch:
    """Grade every submission in `folder` that has no up-to-date result in `out`.

    `write(result, out)` stores a new result (result.json last); `refresh(result, out)`
    re-creates whatever derived files of a cached result are missing; `on_start(todo,
    cached)` is told the split before grading starts."""
    start = time.monotonic()
    paths, skipped = load.discover(folder)
    ids = load.submission_ids(paths)
    adjust = _overrides(out, set(ids.values()), skipped)
    results: dict[str, Result] = {}
    todo: list[Job] = []
    for p in paths:
        job = Job(p, ids[p], cache_key(p, rubric, executor.isolation))
        sweep_temp_files(out / job.sid)
        hit = None if force else cached(out, job)
        if hit is None:
            todo.append(job)
            continue
        adjusted = adjust(hit)
        if adjusted != hit and write:
            write(adjusted, out)   # the overrides changed since it was written
        elif refresh:
            refresh(adjusted, out)
        results[job.sid] = adjusted
    n_cached = len(results)
    if on_start:
        on_start(len(todo), n_cached)
    done: set[str] = set()
    interrupted = False
    try:
        for job, result in executor.run(todo, rubric):
            result = adjust(final(result, job.key))
            if write:
                write(result, out)
            results[job.sid] = result
            done.add(job.sid)
            if on_result:
                on_result(result)
    except KeyboardInterrupt:
        interrupted = True
        executor.abort()
        for job in todo:  # a result whose write the interrupt cut into may be complete
            if job.sid not in done and (hit := cached(out, job)) is not None:
                results[job.sid] = hit
                done.add(job.sid)
    ordered = sorted(results.values(), key=lambda r: r.id)
    pending = [j.sid for j in todo if j.sid not in done]
    return Batch(ordered, skipped, time.monotonic() - start, graded=len(done),
                 cached=n_cached, interrupted=interrupted, pending=pending)


def _overrides(out: Path, ids: set[str], notes: list[str]) -> Callable[[Result], Result]:
    """result -> result with OUT/overrides.csv applied; what cannot apply goes to notes."""
    wanted, problems = overrides.read(out)
    notes += problems
    notes += [f"{overrides.path_in(out)}: no submission {sid} in this folder; its override is "
              "kept but not applied." for sid in sorted(set(wanted) - ids)]

    def adjust(result: Result) -> Result:
        new, problems = overrides.reapply(result, wanted.get(result.id, []))
        notes.extend(p for p in problems if p not in notes)
        return new
    return adjust


# ---------------------------------------------------------------- executors

class LocalExecutor:
    """`jobs` threads on this machine, each waiting on its own sandboxed run."""

    def __init__(self, sandbox, jobs: int, sandbox_name: str = "auto"):
        # a tier that cannot share the CPU fairly between runs says how many may run at once
        cap = getattr(sandbox, "max_parallel", None) or jobs
        self.sandbox, self.jobs = sandbox, max(1, min(jobs, cap))
        self.isolation = sandbox_name  # part of the cache key, as for the Dask executor
        self.pool: ThreadPoolExecutor | None = None

    def run(self, todo: list[Job], rubric: Rubric) -> Iterator[tuple[Job, Result]]:
        from .pipeline import safe_grade
        if not todo:
            return
        self.pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="nngrader")
        try:
            futures = {self.pool.submit(safe_grade, j.path, j.sid, rubric, self.sandbox): j
                       for j in todo}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def abort(self) -> None:
        """Stop now: queued submissions are dropped and running ones killed."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        from .sandbox.embedded import POOL
        POOL.kill_all()  # in-flight runs end at once (their results are never written)
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class DaskExecutor:
    """Submissions on a dask.distributed cluster. The files travel with the task, so the
    workers need nngrader installed (and the sandbox's host requirements), not this
    machine's folders; results stream back as they finish."""

    def __init__(self, address: str, sandbox_name: str):
        try:
            from distributed import Client
        except ImportError:
            raise RuntimeError("the dask executor needs dask.distributed: "
                               "pip install 'nngrader[dask]'") from None
        # Connect timeout: dask's distributed.comm.timeouts.connect (30 s unless configured,
        # e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s).
        self.client = Client(address)
        self.sandbox_name = sandbox_name
        self.isolation = sandbox_name  # part of the cache key: the same run locally agrees
        self.futures: list = []

    def run(self, todo: list[Job], rubric: Rubric) -> Iterator[tuple[Job, Result]]:
        from distributed import as_completed as dask_completed
        if not todo:
            return
        jobs = {}
        for j in todo:
            fut = self.client.submit(grade_remote, j.sid, j.path.name, pack(j.path), rubric,
                                     self.sandbox_name, str(j.path), key=f"nngrader-{j.sid}-{j.key[7:23]}",
                                     pure=False)
            jobs[fut.key] = j
            self.futures.append(fut)
        for fut in dask_completed(self.futures):
            job = jobs[fut.key]
            try:
                data = fut.result()
                result = Result.from_json(data)
            except Exception as e:  # the worker died or could not run the task
                from .pipeline import not_graded
                result = not_graded(job.sid, rubric, f"{INTERNAL} on the dask worker "
                                    f"({type(e).__name__}: {e})", {"source": str(job.path)},
                                    time.monotonic())
            fut.release()
            yield job, result

    def abort(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)

    def close(self) -> None:
        self.client.close()


# Files a submission consists of, as the dask task carries them: its own name -> bytes for
# a file, or relative path -> bytes for every file of a folder.
def pack(path: Path) -> dict[str, bytes]:
    path = Path(path)
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in tree_files(path)}
    try:
        return {"": path.read_bytes()}
    except OSError:
        return {}


def unpack(files: dict[str, bytes], target: Path) -> None:
    if "" in files:
        target.write_bytes(files[""])
        return
    target.mkdir()
    root = target.resolve()
    for rel, data in files.items():
        p = (target / rel).resolve()
        if not p.is_relative_to(root):
            continue  # never write outside the copy
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


_SANDBOXES: dict = {}
_SANDBOXES_LOCK = threading.Lock()


def worker_sandbox(name: str):
    """One sandbox per worker process and name (the probe and worker pool are paid once,
    by the first of the worker's threads)."""
    with _SANDBOXES_LOCK:
        if name not in _SANDBOXES:
            from .sandbox import open_sandbox
            _SANDBOXES[name] = open_sandbox(name)
        return _SANDBOXES[name]


def grade_remote(sid: str, name: str, files: dict[str, bytes], rubric: Rubric,
                 sandbox_name: str, source: str) -> dict:
    """On a dask worker: grade a copy of the submission as the client would, return its
    result.json. Paths in the result are the client's, so it matches a local run."""
    from .pipeline import safe_grade
    with tempfile.TemporaryDirectory(prefix="nngrader-remote-") as tmp:
        target = Path(tmp) / name
        if files:
            unpack(files, target)
        result = safe_grade(target, sid, rubric, worker_sandbox(sandbox_name))
    return result.with_meta(source=source).to_json()
