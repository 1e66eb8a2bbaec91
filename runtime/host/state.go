package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Files in a task's state directory.
const (
	specFile  = "spec.json"
	stateFile = "state.json"
	killFile  = "kill.json"
	exitFile  = "exit.json"
	shimLog   = "shim.log"
	mntDir    = "mnt"
	// exitReserve holds the space of exit.json from the task's start on, so that a disk
	// that fills up while the task runs cannot keep its exit from being recorded.
	exitReserve = ".exit.json.reserve"
)

// exitReserveSize is the space reserved for exit.json; a recorded exit is far smaller.
const exitReserveSize = 4096

// shimState is what the shim records once the task runs. Start times (in clock ticks since
// boot, /proc/<pid>/stat field 22) guard against pid reuse.
type shimState struct {
	ShimPID       int       `json:"shim_pid"`
	ShimStartTime uint64    `json:"shim_start_time"`
	PID           int       `json:"pid"`
	PIDStartTime  uint64    `json:"pid_start_time"`
	StartedAt     time.Time `json:"started_at"`
	// Cgroups are the cgroup directories the shim created, removed when the task ends.
	Cgroups []string `json:"cgroups,omitempty"`
}

// killRequest is written by Kill before it signals the shim.
type killRequest struct {
	Grace time.Duration `json:"grace_ns"`
}

// writeFileAt writes data to name in the directory dirfd atomically: a temporary file is
// renamed over name, so readers see the old content or the new, never a part. It does not
// fsync: the files must survive a restart of kfp-box, and a task does not survive a crash
// of the machine anyway. Files are 0600: a spec holds the task's environment, secrets
// included.
func writeFileAt(dirfd int, name string, data []byte) error {
	tmp := "." + name + ".tmp"
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %s: %w", tmp, err)
		}
		b = b[n:]
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return nil
}

// reserveFile creates name in dirfd holding size bytes of allocated space: a later
// writeReservedAt into it needs no new space.
func reserveFile(dirfd int, name string, size int64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	err = unix.Fallocate(fd, 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		// No fallocate on this file system: writing the bytes allocates them too.
		_, err = unix.Pwrite(fd, make([]byte, size), 0)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlinkat(dirfd, name, 0)
		return fmt.Errorf("reserve %d bytes for %s: %w", size, name, err)
	}
	return nil
}

// writeReservedAt writes data over the start of the file reserve made by reserveFile,
// cuts it to length and renames it to name, so that it needs no new space on a full disk.
// Without the reserved file it is writeFileAt.
func writeReservedAt(dirfd int, reserve, name string, data []byte) error {
	fd, err := unix.Openat(dirfd, reserve, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return writeFileAt(dirfd, name, data)
	}
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("write %s: %w", reserve, err)
		}
		off += n
	}
	if err := unix.Ftruncate(fd, int64(len(data))); err != nil {
		unix.Close(fd)
		return fmt.Errorf("truncate %s: %w", reserve, err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", reserve, err)
	}
	if err := unix.Renameat(dirfd, reserve, dirfd, name); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return nil
}

// writeJSON writes v as JSON to dir/name atomically.
func writeJSON(dir, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFile(dir, name, data)
}

// writeFile writes data to dir/name atomically.
func writeFile(dir, name string, data []byte) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return writeFileAt(fd, name, data)
}

// writeJSONAt writes v as JSON to name in dirfd atomically.
func writeJSONAt(dirfd int, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAt(dirfd, name, data)
}

// readJSON reads dir/name into v. A missing file gives an error satisfying
// errors.Is(err, os.ErrNotExist).
func readJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// errGone means a process no longer exists (or its pid belongs to another process now).
var errGone = errors.New("process gone")

// procStartTime returns the start time of pid in clock ticks since boot, or errGone.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return 0, errGone
		}
		return 0, err
	}
	return parseStatStartTime(data)
}

// parseStatStartTime extracts field 22 (starttime) of /proc/<pid>/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
func parseStatStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	// After ')' come field 3 (state) onwards; starttime is field 22, the 20th of those.
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// procZombie reports whether pid is a zombie (exited, not yet reaped).
func procZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// processGone reports whether pid has exited or is exiting: gone, or a zombie. The threads
// of a killed multi-threaded process may still hold its descriptors while its leader is a
// zombie already.
func processGone(pid int) bool {
	err := unix.Kill(pid, 0)
	return errors.Is(err, unix.ESRCH) || procZombie(pid)
}
