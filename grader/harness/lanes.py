"""Probes side by side, for a box with cores to itself (a single `nngrader check`).

Run one after another, each probe starts with nothing of the submission's alive: the
harness kills every process of the box's uid before it (end_leftovers). Side by side that
sweep would kill the other lane's probe, so between probes only the strays are killed:
every process of the box outside the running probes' process groups (a daemon that left
its group with setsid, a fork that moved). The full sweep still runs before the first
probe and before the results are written.

Verdicts stay those of the sequential run: a probe whose record could depend on what ran
beside it (a crash or a MemoryError: the box's memory and process limits are shared; a
child that could not be forked) runs again, alone, once the lanes have drained.
"""
import os
import select
import signal
import time

from .process import Job, end_leftovers, run_job, sole_uid

ORDER = {"train": 0, "gradcheck": 1, "update": 2, "timing": 3}  # longest first
SHARED_LIMITS = ("MemoryError", "BlockingIOError", "ProcessLimit")


def run_lanes(jobs, plan, lanes):
    """probe id -> record of every probe the jobs finished, `lanes` children at a time."""
    queue = in_order(jobs)
    results, alone, running = {}, [], {}
    end_leftovers()
    while queue or running:
        while queue and len(running) < lanes:
            job = queue.pop(0)
            end_strays({os.getpgrp(), *(c.pid for c in running)})
            child = job.start(plan)
            if child is None:  # the process limit is full: after the others, alone
                alone.append(job)
            else:
                running[child] = job
        if not running:
            break
        wait = min(c.deadline for c in running) - time.monotonic()
        watch = [fd for c in running for fd in c.fds()]
        ready = select.select(watch, [], [], min(max(wait, 0.0), 0.05))[0]
        for child in [c for c in running if c.feed(ready)]:
            job = running.pop(child)
            got = job.records(*child.finish())
            for pid, record in got.items():
                if shared_limit(record):
                    alone.append(Job([next(p for p in job.probes if p["id"] == pid)]))
                else:
                    results[pid] = record
            if job.group:  # what the group's child did not finish runs in a child of its own
                queue += [Job([p]) for p in job.probes if p["id"] not in got]
    for job in alone:
        results.update(run_job(job, plan))
    return results


def in_order(jobs):
    """Longest first (a training run, then the network probes), the cheap group last, so
    the lanes finish close together."""
    return sorted(jobs, key=lambda j: 9 if j.group else ORDER.get(j.probes[0]["kind"], 5))


def shared_limit(record):
    """Whether the record may come from a limit the lanes share (memory, processes)."""
    if record.get("status") == "crash":
        return True
    error = record.get("error") if record.get("status") == "error" else None
    return isinstance(error, dict) and error.get("type") in SHARED_LIMITS


def end_strays(keep):
    """Kill every process of the box outside the process groups in `keep` (the harness's
    own and the running probes'). Only where the box has a PID namespace of its own, whose
    /proc lists exactly the submission's processes (NNGRADER_SOLE_UID=1)."""
    if sole_uid() != "1":
        return
    me = os.getpid()
    for _ in range(100):
        killed = False
        for pid, pgrp in processes():
            if pid not in (1, me) and pgrp not in keep:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except (ProcessLookupError, PermissionError):
                    pass
        if not killed:
            return
        time.sleep(0.002)  # a stray may have forked meanwhile: look again


def processes():
    """(pid, process group) of each live process /proc lists (zombies left out)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
            out.append((int(name), int(fields[2])))
    return out
