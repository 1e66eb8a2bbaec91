#!/bin/sh
# ensure-chromium.sh installs Debian's chromium for the browser tests when it is missing:
# without its recommended packages (printing, avahi, samba libraries) and without dpkg's
# output, which goes to a log that is named only when the install fails.
set -u
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0
echo "ensure-chromium: installing Debian's chromium (--no-install-recommends; no browser download)"
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-chromium chromium
