#!/bin/sh
# apt-install.sh WHO PACKAGE... installs Debian packages for the ensure-*.sh scripts: quietly,
# without recommends, with sudo -n when not root. dpkg's output goes to a log that is named
# only when the install fails; the failure is one line that says what to install by hand.
set -u
who=$1
shift
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "$who: missing: $* and there is no apt-get here; install them with your package manager" >&2
	exit 1
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
	echo "$who: could not install $* with apt-get (see $log); install them by hand" >&2
	exit 1
fi
rm -f "$log"
echo "$who: installed $*"
