"""What an LMS download name says about who handed it in, and which entries are one submission.

  Canvas  lovelaceada_12345_67890_hw2.py, lovelaceada_late_12345_67890_hw2.py
          (name key, an optional late marker in any case, Canvas user id, attachment id,
          original file name)
  Moodle  Ada Lovelace_12345_assignsubmission_file_hw2.py, or with "download submissions
          in folders" one folder per plugin: Ada Lovelace_12345_assignsubmission_file_ and
          Ada Lovelace_12345_assignsubmission_onlinetext_ (full name, participant number:
          the "Participant 12345" of the grading worksheet, the submission plugin)

Used where submissions are found (grader/load.py: one participant's plugin folders are one
submission, the file submission's) and where results are matched to students
(grader/export/identity.py), so both agree on who is who.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterable, TypeVar

CANVAS = re.compile(r"^(?P<key>[^_]+)_(?P<late>(?i:late)_)?(?P<uid>\d+)_(?P<att>\d+)(?:_(?P<rest>.*))?$")
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)(?:_(?P<rest>.*))?$")
# Moodle's submission plugins in the order one is preferred as "the" submission: the code
# is in the file submission; online text is a note next to it.
PLUGIN_ORDER = ("file", "onlinetext")


@dataclass(frozen=True)
class DownloadName:
    """What an LMS download name says about its owner."""
    lms: str                # "canvas" or "moodle"
    name: str               # Canvas name key ("lovelaceada") or Moodle full name
    canvas_id: str = ""
    participant: str = ""
    late: bool = False
    plugin: str = ""        # Moodle submission plugin: "file", "onlinetext", ...


def parse_download_name(name: str) -> DownloadName | None:
    """Read a Canvas or Moodle download name (with or without folders and extension)."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    m = MOODLE.match(base)
    if m:
        return DownloadName("moodle", m["name"], participant=m["pid"], plugin=m["plugin"])
    m = CANVAS.match(base)
    if m:
        return DownloadName("canvas", m["key"], canvas_id=m["uid"], late=bool(m["late"]))
    return None


def plugin_rank(plugin: str) -> int:
    return PLUGIN_ORDER.index(plugin) if plugin in PLUGIN_ORDER else len(PLUGIN_ORDER)


T = TypeVar("T")


def one_per_participant(items: Iterable[T], names: Callable[[T], Iterable[str]]) -> tuple[list[T], list[tuple[T, T]]]:
    """Keep one Moodle entry per participant when their plugins came as separate entries.

    `names(item)` gives the names an item is known by. Entries of one participant from
    different plugins (file, onlinetext) are one submission: the file submission is kept.
    Returns the kept items in their original order and (dropped, kept instead) pairs.
    Entries of the same plugin are left alone (two files of one file submission are not
    alternatives of each other)."""
    items = list(items)
    parsed = {}
    for i, it in enumerate(items):
        d = next((d for d in map(parse_download_name, names(it)) if d and d.lms == "moodle"), None)
        if d is not None:
            parsed[i] = d
    groups: dict[str, list[int]] = {}
    for i, d in parsed.items():
        groups.setdefault(d.participant, []).append(i)
    dropped: dict[int, int] = {}
    for members in groups.values():
        plugins = {parsed[i].plugin for i in members}
        if len(plugins) < 2:
            continue
        best = min(plugins, key=lambda p: (plugin_rank(p), p))
        keep = next(i for i in members if parsed[i].plugin == best)
        for i in members:
            if parsed[i].plugin != best:
                dropped[i] = keep
    kept = [it for i, it in enumerate(items) if i not in dropped]
    return kept, [(items[i], items[k]) for i, k in sorted(dropped.items())]
