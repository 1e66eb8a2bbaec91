package appliance

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/engine"
)

// DefaultHostUser is the user host-runtime tasks run as when kfp-box runs as root and
// --host-user is not set. kfp-box creates it if it is missing: a system user and group
// of their own, no home, no login shell. A user of its own rather than nobody, because
// nobody is shared with other services (NFS, daemons dropping privileges), and what one
// of them leaves writable to nobody a task could change.
const DefaultHostUser = "kfp-box-task"

// nobodyUID is used when neither DefaultHostUser nor a "nobody" entry can be had.
const nobodyUID = 65534

// hostTaskUser decides who host-runtime tasks run as, from --host-user. It returns nil
// when they run as kfp-box's own user: kfp-box is not root (there is nothing to drop), or
// it is root and "root" was asked for.
func hostTaskUser(spec string, log *slog.Logger) (*engine.TaskUser, error) {
	euid := os.Geteuid()
	if euid != 0 {
		if spec == "" {
			return nil, nil
		}
		u, err := parseUser(spec)
		if err != nil {
			return nil, err
		}
		if u.UID != int64(euid) {
			return nil, fmt.Errorf("%w: host_user %q: running tasks as another user needs kfp-box to run as root (it runs as uid %d)", ErrConfig, spec, euid)
		}
		return nil, nil
	}
	switch spec {
	case "":
		return defaultHostUser(log), nil
	case "root", "0", "0:0":
		log.Warn("host tasks run as root (--host-user root): each can change anything on this machine; the data directory is hidden from them, which a root task can undo")
		return nil, nil
	}
	u, err := parseUser(spec)
	if err != nil {
		return nil, err
	}
	if u.UID == 0 {
		log.Warn("host tasks run as uid 0 (--host-user): each can change anything on this machine", "host_user", spec)
	}
	return u, nil
}

// parseUser reads a user name, "uid" or "uid:gid". A name or a bare uid takes the user's
// primary group when the user is known.
func parseUser(spec string) (*engine.TaskUser, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: host_user %q: %s (want a user name, uid or uid:gid)", ErrConfig, spec, why)
	}
	if uidS, gidS, ok := strings.Cut(spec, ":"); ok {
		uid, err1 := strconv.ParseUint(uidS, 10, 31)
		gid, err2 := strconv.ParseUint(gidS, 10, 31)
		if err1 != nil || err2 != nil {
			return nil, bad("uid and gid must be numbers")
		}
		return &engine.TaskUser{UID: int64(uid), GID: int64(gid)}, nil
	}
	if uid, err := strconv.ParseUint(spec, 10, 31); err == nil {
		if u, err := user.LookupId(spec); err == nil {
			if gid, err := strconv.ParseInt(u.Gid, 10, 64); err == nil {
				return &engine.TaskUser{UID: int64(uid), GID: gid}, nil
			}
		}
		return &engine.TaskUser{UID: int64(uid), GID: int64(uid)}, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		return nil, bad("no such user")
	}
	return userIDs(u)
}

func userIDs(u *user.User) (*engine.TaskUser, error) {
	uid, err1 := strconv.ParseInt(u.Uid, 10, 64)
	gid, err2 := strconv.ParseInt(u.Gid, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: user %q has ids %q:%q", ErrConfig, u.Username, u.Uid, u.Gid)
	}
	return &engine.TaskUser{UID: uid, GID: gid}, nil
}

// defaultHostUser finds or creates DefaultHostUser; failing that it falls back to nobody
// with a warning.
func defaultHostUser(log *slog.Logger) *engine.TaskUser {
	if tu, err := ensureSystemUser(DefaultHostUser); err == nil {
		log.Info("host tasks run as an unprivileged user", "user", DefaultHostUser, "uid", tu.UID, "gid", tu.GID)
		return tu
	} else {
		log.Warn("cannot create the user host tasks run as; they run as nobody, shared with other services (set --host-user to a user of your own)",
			"user", DefaultHostUser, "reason", err)
	}
	if u, err := user.Lookup("nobody"); err == nil {
		if tu, err := userIDs(u); err == nil {
			return tu
		}
	}
	return &engine.TaskUser{UID: nobodyUID, GID: nobodyUID}
}

// ensureSystemUser returns the ids of the system user name, creating it (with a group of
// the same name, no home directory and no login shell) when it does not exist. Another
// process may create it at the same moment: useradd then fails on the lock or the
// duplicate, and the user is looked up again.
func ensureSystemUser(name string) (*engine.TaskUser, error) {
	if u, err := user.Lookup(name); err == nil {
		return userIDs(u)
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		return nil, fmt.Errorf("no useradd to create it: %w", err)
	}
	shell := "/usr/sbin/nologin"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/false"
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		out, err := exec.Command(useradd, "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", shell,
			"--comment", "kfp-box host tasks", name).CombinedOutput()
		if u, lerr := user.Lookup(name); lerr == nil {
			return userIDs(u)
		}
		if err == nil {
			return nil, fmt.Errorf("useradd %s succeeded but the user is not found", name)
		}
		lastErr = fmt.Errorf("useradd %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	return nil, lastErr
}
