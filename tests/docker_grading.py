"""Grade a folder the way a Gradescope-like container would: `nngrader grade` INSIDE a
`docker run` with Docker's default capabilities and seccomp profile (no --privileged, no
--cap-add), as root, nngrader installed from a wheel into a writable venv.

No registry answers here, so the image is made offline with `docker import` from a tarball
of this machine's interpreter (its prefix, the standard library writable inside, as a
Gradescope image's is) and a venv holding nngrader's runtime dependencies (their files
taken from this environment's installed distributions). The host's /usr is bound
read-only for the C library and the system tools. The image is tagged by a hash of what
went in and built once per machine; each run pip-installs a wheel of this checkout into
the venv, so the grader under attack is a real, root-owned, writable installation.

tests/docker_grading_driver.py runs inside: it hashes the installation, starts a loopback
listener, grades, and reports what it saw as JSON.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = "/opt/nngrader"
SKIP_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "site-packages"}
IMAGE_REPO = "nngrader-grading"


def docker_answers() -> str:
    """'' when a Docker engine answers, else why not."""
    try:
        out = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"no docker client ({exc})"
    return "" if out.returncode == 0 else f"no Docker engine answers: {out.stderr.strip()[-200:]}"


def runtime_distributions() -> list[md.Distribution]:
    """nngrader's run-time dependencies, transitively (no extras), plus pip to install it."""
    from packaging.requirements import Requirement
    env = {"extra": ""}
    seen: dict[str, md.Distribution] = {}
    todo = [Requirement(r) for r in md.requires("nngrader") or []] + [Requirement("pip")]
    while todo:
        req = todo.pop()
        if req.marker and not req.marker.evaluate(env):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        todo += [Requirement(r) for r in dist.requires or []]
    return list(seen.values())


def prefix() -> Path:
    return Path(os.path.realpath(sys.base_prefix))


def image_tag() -> str:
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in runtime_distributions())
    text = json.dumps([1, str(prefix()), sys.version, dists])
    return f"{IMAGE_REPO}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def ensure_image() -> str:
    tag = image_tag()
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        data = image_tarball()
        subprocess.run(["docker", "import", "-", tag], input=data, check=True,
                       capture_output=True, timeout=600)
        old = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                              IMAGE_REPO], capture_output=True, text=True).stdout.split()
        for stale in set(old) - {tag}:  # built for other dependencies: not needed again
            subprocess.run(["docker", "rmi", stale], capture_output=True)
    return tag


def image_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("tmp", 0o1777), ("proc", 0o755), ("dev", 0o755), ("sys", 0o755),
                        ("etc", 0o755), ("usr", 0o755), ("root", 0o700), ("run", 0o755),
                        ("var", 0o755), ("var/lib", 0o755), ("var/tmp", 0o1777),
                        ("batch", 0o755), ("out", 0o755), ("report", 0o755), ("wheel", 0o755)):
            tar.addfile(dir_info(d, mode))
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            if os.path.islink("/" + top):
                info = tarfile.TarInfo(top)
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink("/" + top)
                tar.addfile(info)
        if os.path.isfile("/etc/ld.so.cache"):
            tar.add("/etc/ld.so.cache", "etc/ld.so.cache")
        add_interpreter(tar)
        add_venv(tar)
    return buf.getvalue()


def dir_info(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


def add_parents(tar: tarfile.TarFile, path: str, added: set) -> None:
    parts = Path(path).parts[1:-1]
    for i in range(len(parts)):
        d = "/".join(parts[: i + 1])
        if d not in added and d not in ("root", "usr", "var", "var/lib", "tmp", "run", "etc"):
            tar.addfile(dir_info(d, 0o755))
        added.add(d)


def add_interpreter(tar: tarfile.TarFile) -> None:
    """The interpreter's prefix, when it is not under /usr (bound from the host)."""
    top = prefix()
    if str(top).startswith("/usr"):
        return
    added: set = set()
    add_parents(tar, str(top / "x"), added)
    stdlib = Path(sysconfig.get_path("stdlib", vars={"installed_base": str(top)}))
    for path, dirs, files in os.walk(top):
        here = Path(path)
        if here == stdlib:
            dirs[:] = [d for d in dirs if d not in SKIP_STDLIB and not d.startswith("config-")]
        elif here == top:
            dirs[:] = [d for d in dirs if d in ("bin", "lib")]
        elif here == top / "lib":
            dirs[:] = [d for d in dirs if d == stdlib.name]
            files = [f for f in files if f.startswith("libpython") and ".so" in f]
        elif here == top / "bin":
            files = [f for f in files if f.startswith("python")]
        for name in dirs + files:
            full = here / name
            if full.is_symlink() or full.is_file() or full.is_dir():
                tar.add(full, str(full)[1:], recursive=False)


def add_venv(tar: tarfile.TarFile) -> None:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = f"{VENV}/lib/{ver}/site-packages"
    for d in ("opt", VENV[1:], f"{VENV[1:]}/bin", f"{VENV[1:]}/lib", f"{VENV[1:]}/lib/{ver}", site[1:]):
        tar.addfile(dir_info(d, 0o755))
    cfg = (f"home = {prefix()}/bin\ninclude-system-site-packages = false\n"
           f"version = {'.'.join(map(str, sys.version_info[:3]))}\n").encode()
    info = tarfile.TarInfo(f"{VENV[1:]}/pyvenv.cfg")
    info.size, info.mode = len(cfg), 0o644
    tar.addfile(info, io.BytesIO(cfg))
    for name in ("python", "python3", ver):
        info = tarfile.TarInfo(f"{VENV[1:]}/bin/{name}")
        info.type, info.linkname = tarfile.SYMTYPE, os.path.realpath(sys.executable)
        tar.addfile(info)
    made = {site[1:]}
    for dist in runtime_distributions():
        base = Path(dist.locate_file(""))
        for rel in dist.files or []:
            if str(rel).startswith("..") or rel.suffix == ".pyc":
                continue
            src = base / rel
            if not src.is_file():
                continue
            dst = f"{site[1:]}/{rel.as_posix()}"
            parent = dst.rsplit("/", 1)[0]
            chain = []
            while parent not in made:
                chain.append(parent)
                parent = parent.rsplit("/", 1)[0]
            for d in reversed(chain):
                tar.addfile(dir_info(d, 0o755))
                made.add(d)
            tar.add(src, dst, recursive=False)


def build_wheel(dest: Path) -> Path:
    """A wheel of this checkout: in this environment (seconds), else in an isolated one."""
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(REPO)]
    if subprocess.run(base + ["--no-build-isolation"], capture_output=True, timeout=300).returncode:
        subprocess.run(base, check=True, capture_output=True, timeout=300)
    return next(dest.glob("nngrader-*.whl"))


def grade_in_container(batch: Path, out: Path, report: Path, rubric: Path, env: dict,
                       timeout: float = 300) -> subprocess.CompletedProcess:
    """Run tests/docker_grading_driver.py in a fresh container with Docker's defaults."""
    tag = ensure_image()
    wheel = build_wheel(report / "wheel")
    name = f"nngrader-test-{os.getpid()}-{os.urandom(4).hex()}"
    mounts = [(batch, "/batch", "rw"), (out, "/out", "rw"), (report, "/report", "rw"),
              (rubric, "/rubric.toml", "ro"), (wheel.parent, "/wheel", "ro"),
              (Path(__file__).with_name("docker_grading_driver.py"), "/driver.py", "ro"),
              (Path("/usr"), "/usr", "ro")]
    cmd = ["docker", "run", "--rm", "--name", name, "--network", "none", "--memory", "4g"]
    for src, dst, mode in mounts:
        cmd += ["-v", f"{src}:{dst}:{mode}"]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    cmd += [tag, f"{VENV}/bin/python", "/driver.py", f"/wheel/{wheel.name}"]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
