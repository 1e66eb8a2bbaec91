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
if [ "$(id -u)" != "0" ]; then
	SUDO="sudo -n"
else
	SUDO=""
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-postgres: postgresql is missing and there is no apt-get here; install PostgreSQL (initdb, pg_ctl) with your package manager" >&2
	exit 1
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql; } >"$log" 2>&1; then
	echo "ensure-postgres: could not install postgresql with apt-get (see $log); install it by hand" >&2
	exit 1
fi
rm -f "$log"
echo "ensure-postgres: installed postgresql"
