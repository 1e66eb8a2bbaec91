#!/bin/sh
# ensure-kubectl.sh installs kubectl when there is none: Debian's kubernetes-client package
# (the tests drive the real kubectl against a running box). A kubectl already on PATH, from
# any source, is kept. Quiet and idempotent; one clear line when it cannot install.
set -u
command -v kubectl >/dev/null 2>&1 && exit 0
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-kubectl kubernetes-client
