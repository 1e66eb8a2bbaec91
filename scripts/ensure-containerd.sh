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
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-containerd $missing
