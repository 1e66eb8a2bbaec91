// Package dbtemp makes the working directory of a throwaway database server started by a
// test (internal/pgtest, internal/mysqltest): short, since a unix socket path must stay under
// 108 bytes, and, when the test runs as root, owned by the account Debian's package created
// for the server, because PostgreSQL and MariaDB refuse to run as root.
package dbtemp

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Dir creates a temporary directory named prefix*. As root it hands the directory to the
// account and returns that account's name, which the caller runs the server as; otherwise
// the account is "". pkg names the Debian package that creates the account, for the error.
func Dir(prefix, account, pkg string) (dir, runAs string, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", err
	}
	if os.Geteuid() != 0 {
		return dir, "", nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("running as root and there is no %s user to run the server as (install Debian's %s package: make deps)", account, pkg)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, account, nil
}
