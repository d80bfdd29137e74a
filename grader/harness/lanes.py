"""Probes side by side, for a box with cores to itself (a single `nngrader check`).

Run one after another, each probe starts with nothing of the submission's alive: the
harness kills every process of the box's uid before it (end_leftovers). Side by side that
sweep would kill the other lane's probe, so between probes only the strays are killed:
every process of the box outside the running probes' process groups (a daemon that left
its group with setsid, a fork that moved). The full sweep still runs before the first
probe and before the results are written. Code that starts processes or writes files
never runs in lanes (grader/side_by_side.py reads the source first), so between probes
there are no strays to find but those of code written to get past that screen.

Verdicts stay those of the sequential run: a probe whose record could depend on what ran
beside it (a crash, a MemoryError, a fork or thread the shared process limit refused, a
full disk) runs again alone once the lanes have drained, within the box's time budget;
for the group of cheap probes, the whole group again, as it ran one by one.
"""
import os
import select
import signal
import time

from .process import Job, end_leftovers, run_job, sole_uid

# start order: a training run first, then the network probes, the cheap group last, so the
# lanes finish close together
FIRST = ("train", "gradcheck", "update", "timing")
SHARED_LIMITS = ("MemoryError", "BlockingIOError", "ProcessLimit")
SHARED_MESSAGES = ("can't start new thread", "No space left on device", "Resource temporarily unavailable")


def run_lanes(jobs, plan, lanes):
    """probe id -> record of every probe the jobs finished, `lanes` children at a time."""
    started, budget = time.monotonic(), sum(job.limit for job in jobs)
    queue, running, finished = in_order(jobs), {}, []  # finished: (job, its records)
    crowded = False  # the submission ran processes of its own beside the probes
    end_leftovers()
    while queue or running:
        while queue and len(running) < lanes:
            job = queue.pop(0)
            crowded |= end_strays({c.pid for c in running})
            child = job.start(plan, tries=1)
            if child is None:  # the process limit is full: after the others, alone
                finished.append((job, job.unstarted()))
                crowded = True
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
            finished.append((job, got))
            if job.group:  # what the group's child did not finish runs in a child of its own
                queue += [Job([p]) for p in job.probes if p["id"] not in got]
    crowded |= end_strays(set())
    return settle(finished, crowded, plan, budget - (time.monotonic() - started))


def settle(finished, crowded, plan, left):
    """The lanes' records, but for those that may differ from a run one by one: all of
    them when the submission ran processes of its own (they may have met the other lane),
    else each probe whose record may come from a shared limit, the grouped probes as the
    group they ran in. Those run again alone, as far as the time left allows (else the
    lane's record stands)."""
    results, again = {}, []
    for job, got in finished:
        shared = [pid for pid, record in got.items() if shared_limit(record)]
        if crowded or (job.group and shared):
            again.append((job, got))
            continue
        results.update((pid, record) for pid, record in got.items() if pid not in shared)
        again += [(Job([p for p in job.probes if p["id"] == pid]), {pid: got[pid]}) for pid in shared]
    if crowded:  # a group's unfinished probes came back as jobs of their own: rerun once
        again = [(job, got) for job, got in again
                 if job.group or not any(j.group and job.probes[0] in j.probes for j, _ in again)]
    deadline = time.monotonic() + left
    for job, lane_records in again:
        alone = time.monotonic() + job.limit <= deadline
        results.update(run_job(job, plan) if alone else lane_records)
    return results


def in_order(jobs):
    def rank(job):
        kind = job.probes[0]["kind"]
        return len(FIRST) + 1 if job.group else FIRST.index(kind) if kind in FIRST else len(FIRST)
    return sorted(jobs, key=rank)


def shared_limit(record):
    """Whether the record may come from a limit the lanes share (memory, processes, the
    box's disk), at its top or in any step a probe recorded."""
    if record.get("status") == "crash":
        return True
    stack = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("type") in SHARED_LIMITS or value.get("type") and any(
                    m in str(value.get("message", "")) for m in SHARED_MESSAGES):
                return True
            stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list)))
    return False


def end_strays(children):
    """Kill every process of the box outside the harness's process group and those of the
    running probe `children` (each a session and group of its own). Only where the box has
    a PID namespace of its own, whose /proc lists exactly the submission's processes
    (NNGRADER_SOLE_UID=1). Returns whether the box held any process besides the harness
    and the children themselves."""
    if sole_uid() != "1":
        return False
    me, seen, keep = os.getpid(), False, {os.getpgrp(), *children}
    for _ in range(100):
        killed = False
        for pid, pgrp in processes():
            if pid in (1, me) or pid in children:
                continue
            seen = True
            if pgrp not in keep:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except (ProcessLookupError, PermissionError):
                    pass
        if not killed:
            return seen
        time.sleep(0.002)  # a stray may have forked meanwhile: look again
    return seen


def processes():
    """(pid, process group) of each process /proc lists that can still run: a zombie only
    when threads of it live on (its main thread exited, the others did not)."""
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
        if len(fields) > 17 and (fields[0] not in (b"Z", b"X") or int(fields[17]) > 1):
            out.append((int(name), int(fields[2])))
    return out
