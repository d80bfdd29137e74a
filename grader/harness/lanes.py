"""Probes side by side, for a box with cores to itself (a single `nngrader check`).

Run one after another, each probe starts with nothing of the submission's alive: the
harness kills every process of the box's uid before it (end_leftovers). Side by side that
sweep would kill the other lane's probe, so between probes only the strays are killed:
every process of the box outside the running probes' process groups (a daemon that left
its group with setsid, a fork that moved). The full sweep still runs before the first
probe and before the results are written. What a probe starts may still run beside the
other lane's probe until then (a submission can only slow down its own probes so); each
child works in a folder of its own (process.own_folder), so no probe reads what another
wrote there.

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
    queue, results, running = in_order(jobs), {}, {}
    again = []  # (job to run alone, the records its lane gave, kept if no time is left)
    end_leftovers()
    while queue or running:
        while queue and len(running) < lanes:
            job = queue.pop(0)
            end_strays({os.getpgrp(), *(c.pid for c in running)})
            child = job.start(plan, tries=1)
            if child is None:  # the process limit is full: after the others, alone
                again.append((job, job.unstarted()))
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
            shared = {pid for pid, record in got.items() if shared_limit(record)}
            if job.group and shared:
                again.append((job, got))  # the whole group, as it ran one by one
                continue
            for pid in shared:
                again.append((Job([p for p in job.probes if p["id"] == pid]), {pid: got[pid]}))
            results.update((pid, r) for pid, r in got.items() if pid not in shared)
            if job.group:  # what the group's child did not finish runs in a child of its own
                queue += [Job([p]) for p in job.probes if p["id"] not in got]
    for job, lane_records in again:
        alone = time.monotonic() - started + job.limit <= budget
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
