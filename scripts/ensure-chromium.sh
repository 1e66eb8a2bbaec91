#!/bin/sh
# ensure-chromium.sh installs Debian's chromium for the browser tests when it is missing:
# without its recommended packages (printing, avahi, samba libraries) and without dpkg's
# output, which goes to a log that is named only when the install fails.
set -u
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: $chromium is missing and there is no apt-get here; install chromium with your package manager" >&2
	exit 1
fi
echo "ensure-chromium: installing Debian's chromium (--no-install-recommends; no browser download)"
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
	echo "ensure-chromium: could not install chromium with apt-get (see $log); install it by hand" >&2
	exit 1
fi
rm -f "$log"
echo "ensure-chromium: installed chromium"
