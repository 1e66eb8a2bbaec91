#!/bin/sh
# ensure-packaging.sh installs what `make dist` and test/packaging need when it is missing:
# the arm64 C cross compiler and libc (kfp-box uses cgo for NVML), file(1), systemd's
# systemd-analyze (to verify the unit) and qemu-user-static (to run the arm64 binary).
# Quiet and idempotent, without recommends; one clear line when it cannot install.
set -u
missing=""
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu"
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || missing="$missing libc6-dev-arm64-cross"
command -v file >/dev/null 2>&1 || missing="$missing file"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v qemu-aarch64-static >/dev/null 2>&1 || missing="$missing qemu-user-static"
[ -z "$missing" ] && exit 0
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-packaging $missing
