"""The Docker backend: a fresh, locked-down container per submission, via the Docker SDK.

Same box, same harness command, same RunOutcome as the embedded tier. Per run: network
none, read-only root, all capabilities dropped, no-new-privileges, a uid from the sandbox
pool, pids/memory/CPU limits plus rlimits (ulimits), tini as PID 1, and the box copied
into a size-limited host tmpfs bound as /box (a container tmpfs would vanish with the
container, before the grader could read box/out). Containers carry a label naming the
grader process, are removed by name in a `finally`, and stale ones are swept at start.

Images: `nngrader-sandbox:latest` when a user built it from sandbox/Dockerfile; otherwise
`nngrader-sandbox:host`, an almost empty image made offline with `docker import` into which
the host's /usr, interpreter and numpy are bound read-only (no registry needed).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

from .base import Limits, OutputCap, RunOutcome, SandboxUnavailable
from .embedded import LIBDIR, STATE_DIR, UidPool, host_layout
from .plain import scrubbed_env

LABEL = "nngrader.owner"
USER_IMAGE = "nngrader-sandbox:latest"     # built from sandbox/Dockerfile
HOST_IMAGE = "nngrader-sandbox:host-1"     # built offline by build_host_image()
USER_IMAGE_PY = ("/usr/local/bin/python", "/usr/local/lib/python{v}/site-packages")


def build_host_image(client) -> str:
    """`docker import` a root with only mount points and the merged-/usr symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        # sbin stays a real folder: the engine binds tini at /sbin/docker-init
        for d in ("box", "tmp", "proc", "dev", "sys", "etc", "usr", "nnlib", "sbin"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for top in ("bin", "lib", "lib64"):
            if os.path.islink("/" + top):
                info = tarfile.TarInfo(top)
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink("/" + top)
                tar.addfile(info)
    repo, tag = HOST_IMAGE.split(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag)
    return HOST_IMAGE


def connect():
    try:
        import docker
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - no SDK, no socket, no engine: all "unavailable"
        raise SandboxUnavailable(f"no Docker engine answers: {exc}") from exc


class DockerSandbox:
    name = "docker"
    tier = "docker"
    isolated = True
    max_lanes = 1  # one CPU per container (nano_cpus): probes side by side gain nothing

    def __init__(self):
        self.local = threading.local()
        client = self.client()
        self.sweep_stale(client)
        self.root = os.geteuid() == 0  # a host tmpfs for /box needs root
        self.image, self.python, self.libdir, self.binds = self.choose_image(client)
        self.pool = UidPool()
        self.protections = (
            "container", "own-uid", "read-only-root", "network-none", "cap-drop-all",
            "no-new-privileges", "pid1-reaper(tini)", "cgroup:memory,pids,cpu", "ulimits",
            "private-tmpfs-workdir" if self.root else "workdir-on-host-disk",
            "wall-clock-kill", "scrubbed-env", "output-cap")

    def client(self):
        """One SDK client per thread: the grader calls run() from several threads."""
        if getattr(self.local, "client", None) is None:
            self.local.client = connect()
        return self.local.client

    @staticmethod
    def sweep_stale(client) -> None:
        """Remove containers of grader processes that died without cleaning up."""
        # the low-level list: the high-level one inspects each container, and fails when
        # another grader removes one of its own in between
        for c in client.api.containers(all=True, filters={"label": LABEL}):
            owner = (c.get("Labels") or {}).get(LABEL, "")
            if not (owner.isdigit() and Path(f"/proc/{owner}").exists()):
                with contextlib.suppress(Exception):
                    client.api.remove_container(c["Id"], force=True)

    def choose_image(self, client):
        import docker
        v = f"{sys.version_info.major}.{sys.version_info.minor}"
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(USER_IMAGE)
            return USER_IMAGE, USER_IMAGE_PY[0], USER_IMAGE_PY[1].format(v=v), []
        try:
            client.images.get(HOST_IMAGE)
        except docker.errors.ImageNotFound:
            build_host_image(client)
        binds, _, hide = host_layout()
        return HOST_IMAGE, os.path.realpath(sys.executable), LIBDIR, [binds, hide]

    def run(self, box: Path, limits: Limits) -> RunOutcome:
        with self.pool.lease() as uid, self.workdir(box, limits, uid) as work:
            return self._run(work, limits, uid, box)

    @contextlib.contextmanager
    def workdir(self, box: Path, limits: Limits, uid: int):
        """A copy of the box on a size-limited host tmpfs, owned by the run's uid."""
        from .launcher import copy_out, mount
        work = STATE_DIR / "docker" / uuid.uuid4().hex
        work.mkdir(parents=True, mode=0o700)
        mounted = False
        try:
            if self.root:
                mount("tmpfs", str(work), "tmpfs", 2 | 4,  # nosuid, nodev
                      f"size={limits.tmp_mb}m,nr_inodes=4096,mode=0755")
                mounted = True
            shutil.copytree(box, work / "box", symlinks=True)
            (work / "box" / "out").mkdir(exist_ok=True)
            for path in [work / "box", *(work / "box").rglob("*")]:
                os.lchown(path, uid, uid)
            yield work / "box"
            box_fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
            try:
                copy_out(str(work / "box" / "out"), box_fd, limits.tmp_mb * 2**20)
            finally:
                os.close(box_fd)
        finally:
            if mounted:
                import ctypes
                ctypes.CDLL(None).umount2(str(work).encode(), 2)
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, work: Path, limits: Limits, uid: int, box: Path) -> RunOutcome:
        client = self.client()
        name = f"nngrader-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        start = time.monotonic()
        try:
            container = client.containers.create(**self.spec(work, limits, uid, name))
            container.start()
            timed_out = False
            try:
                code = container.wait(timeout=limits.wall_s)["StatusCode"]
            except Exception:  # requests' ReadTimeout/ConnectionError: the wall clock ran out
                timed_out, code = True, None
                with contextlib.suppress(Exception):
                    container.kill()
            wall = time.monotonic() - start
            container.reload()
            oom = container.attrs["State"].get("OOMKilled", False)
            out, err = self.logs(container, limits)
            return self.classify(code, timed_out, oom, wall, limits, out, err)
        except SandboxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine failed: our fault, not theirs
            return RunOutcome("internal", message=f"docker: {exc}", tier=self.tier,
                              protections=self.protections, wall_s=time.monotonic() - start)
        finally:
            with contextlib.suppress(Exception):
                client.api.remove_container(name, force=True)

    def spec(self, work: Path, limits: Limits, uid: int, name: str) -> dict:
        from docker.types import LogConfig, Mount, Ulimit
        mb = 2**20
        cpu = int(limits.cpu_s + 0.999)
        mounts = [Mount("/box", str(work), type="bind")]
        tmpfs = {"/tmp": f"size={limits.tmp_mb}m,mode=1777,nosuid,nodev"}
        if self.binds:
            binds, hide = self.binds
            mounts += [Mount(dst, src, type="bind", read_only=True) for src, dst in binds]
            tmpfs |= {h: "size=4k,ro" for h in hide if os.path.isdir(h)}
        return dict(
            image=self.image, name=name, labels={LABEL: str(os.getpid())},
            command=[self.python, "-I", "-S", "-B", "harness.py", "plan.json", self.libdir],
            user=f"{uid}:{uid}", working_dir="/box", detach=True,
            environment=scrubbed_env(Path("/box")) | {"TMPDIR": "/tmp", "NNGRADER_SOLE_UID": "1"},
            network_mode="none", read_only=True, cap_drop=["ALL"],
            security_opt=["no-new-privileges"], init=True,
            pids_limit=limits.processes, mem_limit=limits.memory_mb * mb,
            memswap_limit=limits.memory_mb * mb, nano_cpus=1_000_000_000,
            ulimits=[Ulimit(name="cpu", soft=cpu, hard=cpu + 1),
                     Ulimit(name="nproc", soft=limits.processes, hard=limits.processes),
                     Ulimit(name="fsize", soft=limits.file_size_mb * mb,
                            hard=limits.file_size_mb * mb),
                     Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
                     Ulimit(name="core", soft=0, hard=0)],
            mounts=mounts, tmpfs=tmpfs,
            # the engine keeps logs on the host's disk: bound them there too
            log_config=LogConfig(type="json-file",
                                 config={"max-size": f"{limits.output_kb * 2}k", "max-file": "1"}),
        )

    @staticmethod
    def logs(container, limits: Limits) -> tuple[str, str]:
        caps = []
        for which in ("stdout", "stderr"):
            cap = OutputCap(limits.output_kb * 1024)
            cap.feed(container.logs(stdout=which == "stdout", stderr=which == "stderr"))
            caps.append(cap.text())
        return caps[0], caps[1]

    def classify(self, code, timed_out, oom, wall, limits: Limits, out, err) -> RunOutcome:
        common = dict(tier=self.tier, protections=self.protections, wall_s=wall,
                      stdout=out, stderr=err)
        if timed_out:
            return RunOutcome("timeout", message=f"stopped after the wall-clock limit of "
                              f"{limits.wall_s:g} s", **common)
        if oom:
            return RunOutcome("memory", exit_code=code, signal=code - 128 if code > 128 else None,
                              message=f"ran out of memory (limit {limits.memory_mb} MB)", **common)
        if code > 128:  # tini reports a child killed by signal N as 128 + N
            sig = code - 128
            if sig == signal.SIGXCPU:
                return RunOutcome("timeout", signal=sig, message=f"stopped at the CPU-time "
                                  f"limit of {limits.cpu_s:g} s", **common)
            try:
                label = signal.Signals(sig).name
            except ValueError:
                label = str(sig)
            return RunOutcome("signal", signal=sig, message=f"killed by signal {label}", **common)
        if code != 0:
            return RunOutcome("error", exit_code=code,
                              message=f"the harness exited with code {code}", **common)
        return RunOutcome("ok", exit_code=0, **common)
