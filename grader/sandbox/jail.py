"""The container tier's file tree: only the interpreter, its standard library and numpy.

Without CAP_SYS_ADMIN there are no mounts, so the container tier cannot bind a read-only
root as the namespace tier does; it chroots instead (CAP_SYS_CHROOT, which Docker keeps)
into a tree prepared here, once per interpreter and numpy:

  JAIL_DIR/<key>/base/      each needed host file at its host path: a hard link when the
                            file is on the same file system and safe to share, else a copy
  JAIL_DIR/<key>/slot-N/    one root per concurrent run: a farm of hard links to base/,
                            plus /sandbox (the box, the run's uid owns it) and /tmp
  JAIL_DIR/<key>/slot-N.lock   flock'ed by the run that uses slot N

Everything in the tree is root's and read-only to the run's uid, but /sandbox/box and
/tmp, which each run gets fresh. The grader's own installation, the rubric, the reference,
other submissions and the output folder are simply not in it. Files keep their host paths,
so a pre-started worker that imported the standard library and numpy before the chroot
finds every later import where it expects, and messages name the same paths
(/sandbox/box, /tmp) as in the namespace tier.

The key hashes the interpreter's search path, numpy's folder and version stamp and the
layout version: a new Python or numpy builds a new tree; `nngrader-sandbox prepare`
(python -m grader.sandbox.jail) builds it ahead, e.g. in Gradescope's setup.sh.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .plain import numpy_libdir

LAYOUT = 2
JAIL_DIR = Path(os.environ.get("NNGRADER_JAIL_DIR", "/var/lib/nngrader/jail"))
SKIP_IN_STDLIB = {"site-packages", "dist-packages", "test", "idlelib", "tkinter",
                  "turtledemo", "ensurepip", "__phello__"}
MAX_SLOTS = 64
DEVICES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9)}


@functools.lru_cache(maxsize=1)
def interpreter_path(python: str) -> tuple[str, ...]:
    """sys.path of `python -I -S`: the standard library folders, exactly as the box's."""
    out = subprocess.run([python, "-I", "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
                         capture_output=True, text=True, timeout=60, check=True)
    return tuple(p for p in json.loads(out.stdout) if p)


def jail_key(python: str) -> str:
    """Cheap (no subprocess: every grader process computes it): the interpreter, its
    prefixes and version, numpy's folder and stamps, the layout."""
    lib = Path(numpy_libdir()) / "numpy"
    stamp = [(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in
             (Path(python), lib / "__init__.py", lib / "version.py") if p.exists()]
    text = json.dumps([LAYOUT, python, sys.version, sys.base_prefix, sys.base_exec_prefix,
                       str(lib), stamp])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Jail:
    """The prepared tree for one interpreter; hands out one slot root per run."""

    def __init__(self, python: str | None = None, top: Path | None = None):
        self.python = os.path.realpath(python or sys.executable)
        self.dir = (top or JAIL_DIR) / jail_key(self.python)
        self.base = self.dir / "base"
        if not (self.base / ".ready").exists():
            self._build_base()

    # ------------------------------------------------------------ base: host files

    def _build_base(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        os.chmod(self.dir.parent, 0o755)
        tmp = self.dir / f"base.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o755)
        tree = Tree(str(tmp))
        for folder in interpreter_path(self.python):
            if os.path.isdir(folder):
                tree.folder(folder, skip=SKIP_IN_STDLIB)
            elif os.path.isfile(folder):  # python3XY.zip
                tree.file(folder)
        site = numpy_libdir()
        for part in ("numpy", "numpy.libs"):
            if os.path.isdir(os.path.join(site, part)):
                tree.folder(os.path.join(site, part))
        tree.file(self.python)
        for lib in shared_libraries([self.python, *tree.shared_objects]):
            tree.file(lib)
        if os.path.isfile("/etc/ld.so.cache"):
            tree.file("/etc/ld.so.cache")
        (tmp / ".ready").write_text(json.dumps({"python": self.python, "files": tree.count}))
        try:
            os.rename(tmp, self.base)
        except OSError:  # another grader process finished first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
            if not (self.base / ".ready").exists():
                raise
        sweep_others(self.dir)


    # ------------------------------------------------------------ slots: run roots

    @contextlib.contextmanager
    def slot(self):
        """A root of this tree no other run uses now, built on first use."""
        for n in range(MAX_SLOTS):
            fd = os.open(self.dir / f"slot-{n}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                root = self.dir / f"slot-{n}"
                if not (self.dir / f"slot-{n}.ready").exists():
                    self._build_slot(root)
                    (self.dir / f"slot-{n}.ready").touch()
                yield root
            finally:
                os.close(fd)
            return
        raise RuntimeError(f"all {MAX_SLOTS} sandbox roots are in use")

    def _build_slot(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)
        farm(str(self.base), str(root))
        os.chmod(root, 0o755)
        (root / ".ready").unlink(missing_ok=True)
        (root / "sandbox").mkdir(mode=0o755)
        (root / "proc").mkdir(mode=0o555)  # no proc mount without CAP_SYS_ADMIN: empty
        (root / "dev").mkdir(mode=0o755, exist_ok=True)
        for name, (major, minor) in DEVICES.items():
            with contextlib.suppress(OSError):  # CAP_MKNOD: Docker keeps it, not everyone
                os.mknod(root / "dev" / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
                os.chmod(root / "dev" / name, 0o666)

    def prepare_all(self, slots: int = 1) -> list[Path]:
        """Build `slots` roots now (a container image's setup step)."""
        roots = []
        with contextlib.ExitStack() as stack:
            for _ in range(slots):
                roots.append(stack.enter_context(self.slot()))
        return roots


class Tree:
    """Places host files into a tree at their host paths, symlinks mirrored on the way."""

    def __init__(self, top: str):
        self.top = top
        self.count = 0
        self.shared_objects: list[str] = []

    def dest(self, path: str) -> str:
        return self.top + path

    def parents(self, path: str) -> str:
        """Mirror every folder and symlink above `path`; return its real parent folder."""
        real = "/"
        for part in Path(path).parent.parts[1:]:
            here = os.path.join(real, part)
            if os.path.islink(here):
                link = os.readlink(here)
                if not os.path.lexists(self.dest(here)):
                    os.symlink(link, self.dest(here))
                target = os.path.realpath(here)
                self.parents(os.path.join(target, "x"))
                real = target
            else:
                real = here
                if not os.path.isdir(self.dest(real)):
                    os.mkdir(self.dest(real), 0o755)
        return real

    def file(self, path: str) -> None:
        """One file (a symlink is mirrored, and so is what it points to)."""
        real_parent = self.parents(path)
        here = os.path.join(real_parent, os.path.basename(path))
        if os.path.lexists(self.dest(here)):
            return
        if os.path.islink(here):
            os.symlink(os.readlink(here), self.dest(here))
            self.file(os.path.realpath(here))
            return
        place(here, self.dest(here))
        self.count += 1

    def folder(self, path: str, skip: set[str] = frozenset()) -> None:
        here = os.path.join(self.parents(path), os.path.basename(path.rstrip("/")))
        if os.path.islink(here):
            if not os.path.lexists(self.dest(here)):
                os.symlink(os.readlink(here), self.dest(here))
            self.folder(os.path.realpath(here), skip)
            return
        for top, dirs, files in os.walk(here):
            if top == here:  # the standard library's tests, IDLE, Tk, build configuration
                dirs[:] = [d for d in dirs if d not in skip and not d.startswith("config-")]
            dst = self.dest(top)
            if not os.path.isdir(dst):
                os.mkdir(dst, 0o755)
            for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                src = os.path.join(top, name)
                if os.path.islink(src):
                    if not os.path.lexists(self.dest(src)):
                        os.symlink(os.readlink(src), self.dest(src))
                    continue
                place(src, self.dest(src))
                self.count += 1
                if re.search(r"\.so(\.|$)", name):
                    self.shared_objects.append(src)


def place(src: str, dst: str) -> None:
    """A hard link when the file is safe to share (no group/other write, readable by all),
    else a copy made readable (and executable when the source is)."""
    st = os.lstat(src)
    if not stat.S_ISREG(st.st_mode) or os.path.lexists(dst):  # e.g. lib-dynload, walked twice
        return
    if not st.st_mode & 0o022 and st.st_mode & 0o004:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another file system, or a file system without hard links
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o755 if st.st_mode & 0o111 else 0o644)


def farm(src: str, dst: str) -> None:
    """A copy of the tree `src` made of hard links (same file system: always possible)."""
    for top, dirs, files in os.walk(src):
        out = dst + top[len(src):]
        os.mkdir(out, 0o755)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), os.path.join(out, name))
            else:
                os.link(path, os.path.join(out, name))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]


def shared_libraries(objects: list[str]) -> list[str]:
    """The libraries the dynamic loader maps for these objects, from ldd(1)."""
    found: set[str] = set()
    for start in range(0, len(objects), 64):
        out = subprocess.run(["ldd", *objects[start:start + 64]], capture_output=True,
                             text=True, timeout=120)
        for line in out.stdout.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                found.add(m.group(1))
    return sorted(found)


def sweep_others(keep: Path) -> None:
    """Remove the trees of older interpreters or numpys that no run is using now."""
    for other in keep.parent.iterdir():
        if other == keep or not other.is_dir():
            continue
        locks = []
        try:
            for lock in other.glob("slot-*.lock"):
                fd = os.open(lock, os.O_RDWR)
                locks.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass  # in use (or going): left for the next time
        finally:
            for fd in locks:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.sandbox.jail prepare [SLOTS]`: build the tree ahead of grading."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "prepare":
        print("usage: python -m grader.sandbox.jail prepare [SLOTS]", file=sys.stderr)
        return 2
    jail = Jail()
    roots = jail.prepare_all(int(args[1]) if len(args) > 1 else 1)
    print(f"nngrader: sandbox tree for {jail.python} ready in {jail.dir} ({len(roots)} root(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
