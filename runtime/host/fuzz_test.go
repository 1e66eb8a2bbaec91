package host

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzShimTaskDir feeds the argument of a shim request to the check that confines the shim
// to its own tasks directory: whatever it accepts is a task directory right below it.
func FuzzShimTaskDir(f *testing.F) {
	const tasks = "/var/lib/kfp-box/host/tasks"
	for _, seed := range []string{tasks + "/run-1-0", tasks + "/../shim", tasks + "/a/../b", "/etc", "", tasks, tasks + "/", tasks + "/.", tasks + "//x", "x"} {
		f.Add(seed)
	}
	s := &shimServer{tasksDir: tasks}
	f.Fuzz(func(t *testing.T, arg string) {
		dir, ok := s.taskDir(arg)
		if !ok {
			return
		}
		base := filepath.Base(dir)
		if dir != filepath.Join(tasks, base) || !validID(base) || strings.HasPrefix(base, ".") {
			t.Fatalf("taskDir(%q) accepted %q, which is not a task directory under %s", arg, dir, tasks)
		}
	})
}
