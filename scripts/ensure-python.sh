#!/bin/sh
# ensure-python.sh installs what the tests of lightweight Python components need when it is
# missing: Debian's python3 with venv and pip, and the python3-* packages the KFP SDK imports
# (the rest are the shared wheels in ../shared/python). Quiet and idempotent; one clear line
# when it cannot install.
set -u
pkgs="python3 python3-venv python3-pip python3-click python3-click-option-group python3-google-auth
python3-kubernetes python3-protobuf python3-yaml python3-requests python3-requests-toolbelt
python3-tabulate python3-urllib3 python3-six python3-certifi python3-dateutil"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-python $missing
