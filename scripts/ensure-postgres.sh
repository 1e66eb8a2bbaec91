#!/bin/sh
# ensure-postgres.sh installs Debian's postgresql package when initdb and pg_ctl are missing:
# the tests of the kine datastore (storage/kv/kine, `datastore migrate`) start their own
# throwaway cluster with it (internal/pgtest), on a unix socket, as the postgres user the
# package creates. The package's own cluster service is not needed. Quiet and idempotent; one
# clear line when it cannot install.
set -u
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
	exit 0
fi
# shellcheck disable=SC2086 # one word a package
exec sh "$(dirname "$0")/apt-install.sh" ensure-postgres postgresql
