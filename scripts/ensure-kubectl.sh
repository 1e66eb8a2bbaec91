#!/bin/sh
# ensure-kubectl.sh installs kubectl when there is none: Debian's kubernetes-client package
# (the tests drive the real kubectl against a running box). A kubectl already on PATH, from
# any source, is kept. Quiet and idempotent; one clear line when it cannot install.
set -u
command -v kubectl >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-kubectl: kubectl is missing and there is no apt-get here; install kubectl with your package manager" >&2
	exit 1
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client; } >"$log" 2>&1; then
	echo "ensure-kubectl: could not install kubernetes-client with apt-get (see $log); install kubectl by hand" >&2
	exit 1
fi
rm -f "$log"
echo "ensure-kubectl: installed kubernetes-client ($(kubectl version --client 2>/dev/null | head -1))"
