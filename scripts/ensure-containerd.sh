#!/bin/sh
# ensure-containerd.sh installs what the containerd runtime tests need when it is missing:
# Debian's containerd and runc, busybox-static (the tests build their images from it) and
# docker-registry (the reference OCI registry the pull and bundle tests push to).
# It is idempotent and prints one clear line when it cannot install.
set -u
missing=""
command -v containerd >/dev/null 2>&1 || missing="$missing containerd"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
[ -x /bin/busybox ] || missing="$missing busybox-static"
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-containerd: missing:$missing and no apt-get here; install them with your package manager" >&2
	exit 1
fi
log=$(mktemp)
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing; } >"$log" 2>&1; then
	echo "ensure-containerd: could not install$missing with apt-get (see $log); install them by hand" >&2
	exit 1
fi
rm -f "$log"
echo "ensure-containerd: installed$missing"
