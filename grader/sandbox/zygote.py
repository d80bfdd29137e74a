"""A pre-started sandbox worker: one interpreter that has imported numpy, forked per run.

    python -I -S -B zygote.py SOCKET_FD LIBDIR HARNESS_PACKAGE_DIR

Started by the grader (embedded.py) with the box's scrubbed environment and no grader
code: it imports the standard library modules the harness uses, numpy (from LIBDIR) and
the launchers (launcher.py and container_launcher.py, by path) and the harness package (as
`nnharness`, by path), and then waits.
It never loads student code, has no threads, and keeps no state between runs.

Per run the grader sends, on a SOCK_SEQPACKET socket, the launcher's config (marshal)
with four file descriptors attached (stdout, stderr, the status pipe, the go pipe). The
worker forks a child, which is what `python launcher.py` would have been: its own session,
stdin /dev/null, everything else closed; it calls launcher.launch(cfg), which builds the
namespaces, PID 1 and the harness process exactly as before (pool uid, rlimits, cgroups,
no_new_privs, read-only root, private tmpfs). The one difference is the last step: instead
of exec'ing a fresh interpreter that imports numpy again, the harness process runs the
box's harness.py in-process, whose `from nnharness...` finds the package already imported.
A child forked from this clean process is as fresh as a new interpreter.

Messages back: b"P" + pid once the child exists; b"D" + marshal((wait status, utime,
stime, maxrss_kb)) once it has ended and been reaped. The grader may send b"k" at any time
to kill the current run's process group. EOF on the socket (the grader is gone) kills the
current run and ends the worker, so nothing outlives a grader killed with SIGKILL.
"""
import ctypes
import importlib.util
import marshal
import os
import re  # noqa: F401
import select
import signal
import socket
import sys
import traceback
import types

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


# cfg["launcher"] -> the script whose launch(cfg) starts a run of that tier
LAUNCHERS = {"namespaces": "launcher.py", "container": "container_launcher.py"}


def load_launcher(script="launcher.py"):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    spec = importlib.util.spec_from_file_location("nngrader_" + script[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preload_harness(package_dir):
    """Import the harness package as `nnharness`, every module of it, the way the box's
    harness.py would: stdlib and numpy only, nothing of the grader or of any student."""
    init = os.path.join(package_dir, "__init__.py")
    spec = importlib.util.spec_from_file_location("nnharness", init,
                                                  submodule_search_locations=[package_dir])
    package = importlib.util.module_from_spec(spec)
    sys.modules["nnharness"] = package
    spec.loader.exec_module(package)
    importlib.import_module("nnharness.process")  # imports every probe module
    importlib.import_module("nnharness.lanes")


class Worker:
    def __init__(self, sock_fd, libdir, harness_dir):
        self.sock = socket.socket(fileno=sock_fd)
        self.base_path = list(sys.path)  # what `python -I -S` starts with
        sys.path[:0] = [libdir]
        import numpy
        import numpy.random  # noqa: F401 - lazy in numpy 2; every probe child needs it
        self.launchers = {tier: load_launcher(script) for tier, script in LAUNCHERS.items()}
        for launcher in self.launchers.values():
            launcher.ENTER = self.enter
        preload_harness(harness_dir)
        self.libc = ctypes.CDLL(None, use_errno=True)
        # Orphans of a run whose launcher was killed come here, not to the container's
        # init (which may be a grader that never reaps them): reaped after every run.
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        sys.stdout.flush()
        sys.stderr.flush()

    # ------------------------------------------------------------ the worker's loop

    def serve(self):
        self.sock.send(b"R")  # ready: numpy imported
        # The harness's patterns are compiled once here, for every probe child forked later;
        # after "R", so it overlaps the grader's own start-up (a request waits in the socket)
        sys.modules["nnharness.calling"].warm()
        while True:
            reap_orphans()  # e.g. a namespace's PID 1 that outlived its launcher briefly
            msg, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 8)
            if not msg:
                return  # the grader closed its end
            if msg == b"k" or len(fds) != 4:  # a kill that came after its run ended
                for fd in fds:
                    os.close(fd)
                continue
            if not self.run(marshal.loads(msg), fds):
                return

    def run(self, cfg, fds):
        pid = os.fork()
        if pid == 0:
            self.child(cfg, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.sock.send(b"P" + str(pid).encode())
        pidfd = os.pidfd_open(pid)
        grader_alive = True
        try:
            while True:
                ready, _, _ = select.select([self.sock, pidfd], [], [])
                if pidfd in ready:
                    break
                msg = self.sock.recv(64)
                if msg == b"k":
                    kill_group(pid)
                elif not msg:  # grader gone: end the run, then the worker
                    kill_group(pid)
                    grader_alive = False
        finally:
            os.close(pidfd)
        kill_group(pid)  # stragglers in its group; pid is not reaped yet, so not reused
        _, status, usage = os.wait4(pid, 0)
        if cfg.get("launcher") == "container" and status != 0:
            # the launcher was killed before it could: no PID namespace took the rest along
            self.launchers["container"].kill_uid(cfg["uid"])
        reap_orphans()
        if grader_alive:
            done = marshal.dumps((status, usage.ru_utime, usage.ru_stime, usage.ru_maxrss))
            self.sock.send(b"D" + done)
        return grader_alive

    # ------------------------------------------------------------ in the forked child

    def child(self, cfg, fds):
        """The launcher's process: what `python launcher.py CONFIG` would have been."""
        code = 2
        try:
            self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the worker
            out, err, status_fd, go_fd = fds
            self.sock.close()  # the box must never reach the worker
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            for src, dst in ((null, 0), (out, 1), (err, 2)):
                os.dup2(src, dst)
            keep = {0, 1, 2, status_fd, go_fd}
            for fd in list_fds():
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            cfg["status_fd"], cfg["go_fd"] = status_fd, go_fd
            self.launchers[cfg.get("launcher", "namespaces")].launch(cfg)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - reported on the status pipe by launch()
            code = 2
        finally:
            os._exit(code)

    def enter(self, cfg):
        """In the harness process, after credentials, rlimits and no_new_privs: run the
        box's harness.py as `python -I -S -B harness.py plan.json LIBDIR` would."""
        code = 1
        try:
            os.environ.clear()
            os.environ.update(cfg["env"])
            argv = cfg["argv"]
            script = argv[argv.index("-B") + 1]
            sys.argv = argv[argv.index("-B") + 1:]
            sys.path[:] = self.base_path
            with open(script, "rb") as f:
                src = f.read()
            path = os.path.abspath(script)
            code_obj = compile(src, path, "exec", dont_inherit=True)
            main = types.ModuleType("__main__")
            main.__file__ = path
            main.__builtins__ = __builtins__
            sys.modules["__main__"] = main
            code = 0
            try:
                exec(code_obj, main.__dict__)
            except SystemExit as e:
                code = exit_code(e.code)
            except BaseException:  # noqa: BLE001 - as the interpreter would: traceback, 1
                traceback.print_exc()
                code = 1
            interpreter_exit()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001
                    pass
            os._exit(code)


def interpreter_exit():
    """What the interpreter does before it exits: join non-daemon threads, run atexit."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001
        pass


def exit_code(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass
    return 1


def reap_orphans():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def list_fds():
    try:
        return [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


if __name__ == "__main__":
    Worker(int(sys.argv[1]), sys.argv[2], sys.argv[3]).serve()
    # Nothing to save or clean up (no files, runs already ended and reaped): skip the
    # interpreter's teardown of numpy and co., which the grader would wait for on exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
