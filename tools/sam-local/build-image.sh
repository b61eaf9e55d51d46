#!/bin/sh
# Build the stand-in for AWS's python3.13 Lambda base image offline, for machines that cannot pull
# public.ecr.aws/lambda/python:3.13 (README.md beside this script). Needs root (mmdebstrap), Docker and,
# for an architecture other than the host's, qemu-user-static's binfmt handler (setup-docker.sh).
#
#   build-image.sh ARCH IMAGE WORKDIR      ARCH: arm64 or x86_64 (Lambda's names)
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (default trixie, whose
# python3 is 3.13), PIP (default: python3 -m pip).
set -eu

arch=$1 image=$2 workdir=$3
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-trixie}
pip=${PIP:-python3 -m pip}

case $arch in
    arm64) debian_arch=arm64 docker_platform=linux/arm64 wheel_platform=manylinux2014_aarch64 ;;
    x86_64) debian_arch=amd64 docker_platform=linux/amd64 wheel_platform=manylinux2014_x86_64 ;;
    *) echo "build-image.sh: ARCH must be arm64 or x86_64, not '$arch'" >&2; exit 2 ;;
esac

rootfs=$workdir/rootfs
rm -rf "$workdir"
mkdir -p "$workdir"

# mmdebstrap resolves and unpacks with the host's apt and dpkg, so only the packages' own scripts run
# under emulation for a foreign architecture (debootstrap's second stage runs everything there: far slower).
echo "build-image.sh: mmdebstrap $suite ($debian_arch) from $mirror"
mmdebstrap --quiet --mode=root --variant=minbase --architectures="$debian_arch" --include=python3 \
    "$suite" "$rootfs" "$mirror"
chroot "$rootfs" python3 -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version'

# The runtime's packages are wheels for the image's platform, installed from the host: no pip in the image.
echo "build-image.sh: /var/runtime from $here/runtime-requirements.txt ($wheel_platform)"
$pip install --quiet --disable-pip-version-check --no-compile --target "$rootfs/var/runtime" \
    --only-binary=:all: --platform "$wheel_platform" --python-version 3.13 --implementation cp \
    --requirement "$here/runtime-requirements.txt"
install -m 0755 "$here/bootstrap" "$rootfs/var/runtime/bootstrap"
mkdir -p "$rootfs/var/task" "$rootfs/opt"
# Bytecode by the image's own python3, as the runtime ships it: no cold start compiles boto3 (under
# emulation that alone takes a minute).
chroot "$rootfs" python3 -m compileall -q -j 0 /var/runtime
chroot "$rootfs" env PYTHONPATH=/var/runtime python3 -c 'import awslambdaric.bootstrap, boto3'

tar -C "$rootfs" --numeric-owner -cf "$workdir/rootfs.tar" .
cp "$here/Dockerfile" "$workdir/Dockerfile"
docker build --quiet --platform "$docker_platform" --tag "$image" "$workdir"
docker image inspect --format "build-image.sh: {{.RepoTags}} {{.Os}}/{{.Architecture}}" "$image"
rm -rf "$workdir"
