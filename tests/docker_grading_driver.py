"""Runs INSIDE the test container (tests/docker_grading.py), as root, with the image's
python: installs the wheel, hashes the installation, grades /batch with a loopback
listener up, and writes /report/report.json with what it saw. Stdlib only.

    python /driver.py /wheel/nngrader-X.whl
"""
import glob
import hashlib
import json
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time

PORTS = range(47310, 47330)
WATCHED = ["/tmp/result.json", "/tmp/results.json", "/var/tmp/result.json",
           "/dev/shm/result.json", "/tmp/out", "/tmp/nngrader_adv_pickle_ran",
           "/tmp/nngrader_adv_daemon_marker", "/var/tmp/nngrader_adv_daemon_marker",
           "/dev/shm/nngrader_adv_daemon_marker"]
FILL_GLOBS = ["/tmp/nngrader_adv_fill_*", "/var/tmp/nngrader_adv_fill_*",
              "/dev/shm/nngrader_adv_fill_*", "/root/nngrader_adv_fill_*", "/nngrader_adv_fill_*"]


def digest(top):
    """Every file under `top` (names, modes, bytes), and the .pth files anywhere in it."""
    h = hashlib.sha256()
    for path, dirs, files in sorted(os.walk(top)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(path, name)
            if "__pycache__" in full:
                continue
            st = os.lstat(full)
            h.update(f"{full} {st.st_mode:o}".encode())
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def listener(conns):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", PORTS[0]))
    sock.listen(16)
    sock.settimeout(0.2)
    while True:
        try:
            conn, addr = sock.accept()
        except OSError:
            continue
        conns.append(str(addr))
        conn.close()


def pool_processes():
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = open(f"/proc/{name}/status").read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields["Uid"].split()[0])
        if uid != 0:
            found.append(f"pid {name} uid {uid} state {fields['State'].strip()}")
    return found


def main():
    wheel = sys.argv[1]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", wheel], check=True)
    site = sysconfig.get_paths()["purelib"]
    stdlib = sysconfig.get_paths()["stdlib"]
    tops = {"grader": os.path.join(site, "grader"), "site-packages": site, "stdlib": stdlib}
    before = {k: digest(v) for k, v in tops.items()}
    conns = []
    threading.Thread(target=listener, args=(conns,), daemon=True).start()
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", "/batch", "--out", "/out",
                           "--jobs", "2", "--sandbox", os.environ.get("SANDBOX", "auto"),
                           "--rubric", "/rubric.toml"], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    time.sleep(1.5)  # a daemon's marker would be written about a second later
    after = {k: digest(v) for k, v in tops.items()}
    outside = [p for p in WATCHED if os.path.lexists(p)]
    for pattern in FILL_GLOBS:
        outside += glob.glob(pattern)
    report = {"returncode": proc.returncode, "stdout": proc.stdout[-4000:],
              "stderr": proc.stderr[-4000:], "elapsed": elapsed, "before": before,
              "after": after, "connections": conns, "outside": outside,
              "leftover": pool_processes(), "pth": glob.glob(site + "/*.pth") + glob.glob(stdlib + "/*.pth")}
    with open("/report/report.json", "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
