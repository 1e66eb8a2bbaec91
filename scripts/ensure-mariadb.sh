#!/bin/sh
# ensure-mariadb.sh installs Debian's mariadb-server package when mariadbd and
# mariadb-install-db are missing: the tests of the kine datastore on mysql:// endpoints
# (storage/kv/kine) start their own throwaway server with it (internal/mysqltest), on a unix
# socket in a temporary directory, with networking off. The package's own service is not
# needed. Quiet and idempotent; one clear line when it cannot install.
set -u
if { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } &&
	{ command -v mariadb-install-db >/dev/null 2>&1 || [ -x /usr/bin/mariadb-install-db ]; }; then
	exit 0
fi
exec sh "$(dirname "$0")/apt-install.sh" ensure-mariadb mariadb-server
