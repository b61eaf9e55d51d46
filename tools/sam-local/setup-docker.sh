#!/bin/sh
# Prepare a Debian machine (a CI runner, a Linux workstation) to run `sam local`: Docker Engine running,
# mmdebstrap for build-image.sh, and, where the host is not arm64, qemu-user-static's binfmt handler so
# the template's arm64 function runs under emulation. Needs root. On Docker Desktop there is nothing to
# do: it runs arm64 images itself.
set -eu

missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need dockerd docker.io
need mmdebstrap mmdebstrap
host_arch=$(uname -m)
if [ "$host_arch" != aarch64 ] && [ "$host_arch" != arm64 ]; then
    need qemu-aarch64-static qemu-user-static
    need update-binfmts binfmt-support
fi
if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-docker.sh: install$missing (not a Debian machine: use your distribution's packages)" >&2
        exit 1
    fi
    echo "setup-docker.sh: apt-get install$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

if ! docker info >/dev/null 2>&1; then
    log=${DOCKERD_LOG:-/var/log/dockerd.log}
    echo "setup-docker.sh: starting dockerd (log: $log)"
    nohup dockerd >"$log" 2>&1 &
    tries=0
    until docker info >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ $tries -gt 60 ]; then echo "setup-docker.sh: dockerd did not start, see $log" >&2; exit 1; fi
        sleep 1
    done
fi
echo "setup-docker.sh: $(docker version --format 'Docker Engine {{.Server.Version}}')"

if [ "$host_arch" != aarch64 ] && [ "$host_arch" != arm64 ]; then
    binfmt=/proc/sys/fs/binfmt_misc
    [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
    update-binfmts --enable qemu-aarch64
    # F (fix binary): the kernel keeps the interpreter open, so it works inside containers and chroots too.
    grep -q '^flags: .*F' "$binfmt/qemu-aarch64" || {
        echo "setup-docker.sh: qemu-aarch64's binfmt handler lacks the F flag: containers cannot use it" >&2
        exit 1
    }
    echo "setup-docker.sh: arm64 binaries run under qemu-aarch64 ($binfmt/qemu-aarch64)"
fi
