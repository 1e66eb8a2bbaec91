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
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-packaging: missing:$missing and no apt-get here; install them with your package manager" >&2
	exit 1
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
	echo "ensure-packaging: could not install$missing with apt-get (see $log); install them by hand" >&2
	exit 1
fi
rm -f "$log"
echo "ensure-packaging: installed$missing"
