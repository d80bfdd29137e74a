#!/bin/sh
# Make a Docker engine answer for the Docker backend's tests (used by .ci/run).
# Installs Debian's docker.io when missing and starts dockerd with --iptables=false
# --bridge=none, so the host's network and firewall are left alone (containers run with
# --network none anyway). Always exits 0: when no engine can start it says why, and the
# Docker tests skip with that reason.
set -u
log=${DOCKERD_LOG:-/tmp/nngrader-dockerd.log}

answers() { docker info >/dev/null 2>&1; }

if answers; then echo "dockerd: already running"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "dockerd: not root, cannot start an engine"; exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd: installing docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null 2>&1 \
        || { echo "dockerd: apt-get install docker.io failed"; exit 0; }
fi
nohup dockerd --iptables=false --ip6tables=false --bridge=none >"$log" 2>&1 &
i=0
while [ $i -lt 60 ]; do
    if answers; then echo "dockerd: ready"; exit 0; fi
    i=$((i + 1)); sleep 0.5
done
echo "dockerd: did not answer within 30 s; last lines of $log:"
tail -n 5 "$log"
exit 0
