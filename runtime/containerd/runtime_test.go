package containerd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run starts spec, waits for it and deletes it, returning the status and the log.
func run(t *testing.T, r runtime.Runtime, spec runtime.TaskSpec) (runtime.ExitStatus, string) {
	t.Helper()
	ctx := ctxT(t)
	tk, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := tk.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := tk.Delete(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}
	b, _ := os.ReadFile(spec.LogPath)
	return st, string(b)
}

var idSeq int

func newSpec(t *testing.T, args ...string) runtime.TaskSpec {
	idSeq++
	id := fmt.Sprintf("ct-%d-%d", os.Getpid(), idSeq)
	return runtime.TaskSpec{ID: id, Image: testImage, Args: args, LogPath: filepath.Join(t.TempDir(), id+".log")}
}

func TestStartErrors(t *testing.T) {
	requireContainerd(t)
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	tests := []struct {
		name   string
		mutate func(*runtime.TaskSpec)
		want   error
		msg    string
	}{
		{"missing image, Never", func(s *runtime.TaskSpec) { s.Image, s.PullPolicy = "kfp-box/absent:1", runtime.PullNever }, runtime.ErrImageNotFound, "import it with kfp-box image import"},
		{"missing image, registry down", func(s *runtime.TaskSpec) { s.Image = "127.0.0.1:1/absent:1" }, runtime.ErrImageNotFound, `image "127.0.0.1:1/absent:1" is not present`},
		{"bad id", func(s *runtime.TaskSpec) { s.ID = "-bad id" }, runtime.ErrInvalid, "must match"},
		{"relative log path", func(s *runtime.TaskSpec) { s.LogPath = "x.log" }, runtime.ErrInvalid, "absolute"},
		{"missing read-only source", func(s *runtime.TaskSpec) {
			s.Mounts = []runtime.Mount{{Source: "/nonexistent/kfp-box", Target: "/in", ReadOnly: true}}
		}, runtime.ErrInvalid, "does not exist"},
		{"reserved label", func(s *runtime.TaskSpec) { s.Labels = map[string]string{"io.kfp-box/managed": "x"} }, runtime.ErrInvalid, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(t, "true")
			tt.mutate(&spec)
			_, err := r.Start(ctxT(t), spec)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("start: err %v; want %v containing %q", err, tt.want, tt.msg)
			}
			if _, err := r.Lookup(ctxT(t), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("a failed start left task %q behind (lookup: %v)", spec.ID, err)
			}
		})
	}
}

// TestLimitsInCgroup checks the CPU and memory limits in the task's cgroup from the host
// while it runs, and the /dev/shm size, device node and GPU env inside it.
func TestLimitsInCgroup(t *testing.T) {
	requireContainerd(t)
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	ctl := t.TempDir()
	spec := newSpec(t, "sh", "-c", `df -k /dev/shm | tail -1; test -c /dev/fakegpu0 && echo dev-ok; echo "gpu=$NVIDIA_VISIBLE_DEVICES"
echo "quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null | head -1)"
echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null | head -1)"
while [ ! -e /ctl/go ]; do sleep 0.02; done`)
	spec.Mounts = []runtime.Mount{{Source: ctl, Target: "/ctl"}}
	spec.Resources = runtime.Resources{CPULimit: 0.5, CPURequest: 0.25, MemoryLimit: 96 << 20, MemoryRequest: 32 << 20, ShmSize: 16 << 20}
	spec.GPUs = &runtime.GPUs{
		Devices: []runtime.Device{{Path: "/dev/null", ContainerPath: "/dev/fakegpu0"}},
		Env:     map[string]string{"NVIDIA_VISIBLE_DEVICES": "GPU-test"},
	}
	ctx := ctxT(t)
	tk, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	cg := func(controller, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, containerd.DefaultNamespace, spec.ID, file))
		if err != nil {
			t.Fatalf("read cgroup: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("cgroup v1 memory controller not mounted at /sys/fs/cgroup/memory; this check reads cgroup v1 files")
	}
	checks := []struct{ controller, file, want string }{
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "256"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(96 << 20)},
		{"memory", "memory.soft_limit_in_bytes", strconv.Itoa(32 << 20)},
	}
	for _, c := range checks {
		if got := cg(c.controller, c.file); got != c.want {
			t.Errorf("%s/%s = %s, want %s", c.controller, c.file, got, c.want)
		}
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := tk.Wait(ctx)
	if err != nil || st.Code != 0 {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := tk.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	// The task sees its own limits, as in a Kubernetes pod.
	for _, want := range []string{" 16384 ", "stdout dev-ok", "stdout gpu=GPU-test", "stdout quota=50000", "stdout mem=" + strconv.Itoa(96<<20)} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestPullPolicyUsesLocalImage(t *testing.T) {
	requireContainerd(t)
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	// testImage names an unreachable registry: Always falls back to the imported image.
	for _, p := range []runtime.PullPolicy{runtime.PullNever, runtime.PullIfNotPresent, runtime.PullAlways} {
		spec := newSpec(t, "echo", "hi")
		spec.PullPolicy = p
		if st, log := run(t, r, spec); st.Code != 0 || !strings.Contains(log, "stdout hi") {
			t.Errorf("policy %s: status %+v log %q", p, st, log)
		}
	}
}

func TestImportListRemove(t *testing.T) {
	requireContainerd(t)
	ctx := ctxT(t)
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: env.daemon.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if err := containerdtest.WriteDockerArchive(&buf, "busybox:docker-archive"); err != nil {
		t.Fatal(err)
	}
	names, err := containerd.ImportImages(ctx, c, &buf, "", "")
	if err != nil {
		t.Fatalf("import docker archive: %v", err)
	}
	const want = "docker.io/library/busybox:docker-archive"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("imported %q, want [%s]", names, want)
	}
	list, err := containerd.ListImages(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, img := range list {
		found = found || (img.Name == want && img.Size > 1<<20 && strings.HasPrefix(img.Digest, "sha256:"))
	}
	if !found {
		t.Errorf("list %+v lacks %s", list, want)
	}
	// An OCI layout whose index names only a tag needs a name.
	var oci bytes.Buffer
	if err := containerdtest.WriteOCIArchive(&oci, "latest"); err != nil {
		t.Fatal(err)
	}
	raw := oci.Bytes()
	if _, err := containerd.ImportImages(ctx, c, bytes.NewReader(raw), "", ""); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("import of a tag-only OCI layout without a name: %v, want ErrInvalid", err)
	}
	names, err = containerd.ImportImages(ctx, c, bytes.NewReader(raw), "", "team/tagged:1")
	if err != nil || len(names) != 1 || names[0] != "docker.io/team/tagged:1" {
		t.Errorf("import with --name: %q %v", names, err)
	}
	_ = containerd.RemoveImage(ctx, c, "team/tagged:1")
	// The short name runs, and is removed by its short name.
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	spec := newSpec(t, "true")
	spec.Image = "busybox:docker-archive"
	if st, _ := run(t, r, spec); st.Code != 0 {
		t.Errorf("task on the imported image: %+v", st)
	}
	if err := containerd.RemoveImage(ctx, c, "busybox:docker-archive"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := containerd.RemoveImage(ctx, c, "busybox:docker-archive"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("second remove: %v, want ErrImageNotFound", err)
	}
}

// TestDaemonRestartsAfterCrash kills a supervised child containerd and waits for the
// supervisor to report the crash and bring a new one up on the same socket.
func TestDaemonRestartsAfterCrash(t *testing.T) {
	requireContainerd(t)
	dir, err := os.MkdirTemp("", "kfpbox-d-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { containerdtest.Unmount(dir); _ = os.RemoveAll(dir) })
	ctx := ctxT(t)
	d, err := containerd.StartDaemon(ctx, containerd.DaemonConfig{Dir: dir, Logger: testLogger(), MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	first := d.Pid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.Crashes():
		if !strings.Contains(err.Error(), "exited unexpectedly") {
			t.Errorf("crash error = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no crash reported")
	}
	if err := containerd.Probe(ctx, containerd.ProbeOptions{Address: d.Address()}); err != nil {
		for ctx.Err() == nil && containerd.Probe(ctx, containerd.ProbeOptions{Address: d.Address()}) != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := containerd.Probe(ctx, containerd.ProbeOptions{Address: d.Address()}); err != nil {
		t.Fatalf("daemon not back: %v", err)
	}
	if d.Pid() == first || d.Pid() == 0 {
		t.Errorf("pid after restart = %d, first %d", d.Pid(), first)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := containerd.Probe(ctx, containerd.ProbeOptions{Address: d.Address()}); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("probe after stop: %v, want ErrUnavailable", err)
	}
}

// boxEnv makes the test binary act as a kfp-box process that owns a child containerd.
const boxEnv = "KFPBOX_TEST_BOX"

// TestReadoptAfterBoxKilled starts a "box" process (this test binary) that runs its own
// child containerd and starts a task, SIGKILLs the box while the task sleeps, then opens the
// runtime on the same data directory, re-adopts the task and records its exit.
func TestReadoptAfterBoxKilled(t *testing.T) {
	requireContainerd(t)
	data, err := os.MkdirTemp("", "kfpbox-box-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { containerdtest.Unmount(data); _ = os.RemoveAll(data) })
	ctl := t.TempDir()
	spec := newSpec(t, "sh", "-c", "echo before; while [ ! -e /ctl/go ]; do sleep 0.02; done; echo after; exit 7")
	spec.Mounts = []runtime.Mount{{Source: ctl, Target: "/ctl"}}
	spec.Labels = map[string]string{"run": "r1"}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	box := exec.Command(exe, "-test.run=^$")
	box.Env = append(os.Environ(), boxEnv+"="+data, "KFPBOX_TEST_INIT="+env.initPath,
		"KFPBOX_TEST_SPEC="+strings.Join([]string{spec.ID, spec.LogPath, ctl}, "|"))
	out, err := box.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	box.Stderr = os.Stderr
	if err := box.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "started" {
		_ = box.Process.Kill()
		_ = box.Wait()
		t.Fatalf("box: %q %v", line, err)
	}
	_ = box.Process.Kill()
	_ = box.Wait()

	r := newRuntimeOn(t, data)
	ctx := ctxT(t)
	tk, err := r.Lookup(ctx, spec.ID)
	if err != nil {
		t.Fatalf("lookup after the box was killed: %v", err)
	}
	if tk.Labels()["run"] != "r1" {
		t.Errorf("labels = %v", tk.Labels())
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := tk.Wait(ctx)
	if err != nil || st.Code != 7 {
		t.Fatalf("wait: %+v %v, want code 7", st, err)
	}
	if err := tk.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	if !strings.Contains(string(log), "stdout before\n") || !strings.Contains(string(log), "stdout after\n") {
		t.Errorf("log:\n%s", log)
	}
}

// newRuntimeOn opens a runtime that finds or starts containerd by itself for data.
func newRuntimeOn(t testing.TB, data string) *containerd.Runtime {
	t.Helper()
	r, err := containerd.New(ctxT(t), containerd.Config{DataDir: data, InitBinary: env.initPath, Logger: testLogger()})
	if err != nil {
		t.Fatalf("open runtime on %s: %v", data, err)
	}
	t.Cleanup(func() {
		// Whatever the test left running dies with its containerd, not after it.
		if d := r.Daemon(); d != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			containerdtest.RemoveAll(ctx, d.Address())
			cancel()
		}
		_ = r.Close()
	})
	return r
}

// boxMain is the body of the box process of TestReadoptAfterBoxKilled; it never returns.
func boxMain(data string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "box:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	r, err := containerd.New(ctx, containerd.Config{DataDir: data, InitBinary: os.Getenv("KFPBOX_TEST_INIT")})
	if err != nil {
		fail(err)
	}
	if err := containerdtest.ImportBusyboxClient(ctx, r.Client(), testImage); err != nil {
		fail(err)
	}
	parts := strings.Split(os.Getenv("KFPBOX_TEST_SPEC"), "|")
	spec := runtime.TaskSpec{
		ID: parts[0], Image: testImage, LogPath: parts[1], Labels: map[string]string{"run": "r1"},
		Args:   []string{"sh", "-c", "echo before; while [ ! -e /ctl/go ]; do sleep 0.02; done; echo after; exit 7"},
		Mounts: []runtime.Mount{{Source: parts[2], Target: "/ctl"}},
	}
	if _, err := r.Start(ctx, spec); err != nil {
		fail(err)
	}
	fmt.Println("started")
	select {}
}

// TestKillEscalatesAcrossRestart kills a task that ignores SIGTERM with a grace period,
// closes the runtime before the grace period ends (a restart of kfp-box), and checks that
// the reopened runtime still sends SIGKILL once the task is looked up again.
func TestKillEscalatesAcrossRestart(t *testing.T) {
	requireContainerd(t)
	data := t.TempDir()
	r := newRuntime(t, data)
	spec := newSpec(t, "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	ctx := ctxT(t)
	tk, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(readLog(spec.LogPath), "stdout ready") {
		if ctx.Err() != nil {
			t.Fatal("task never printed ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tk.Kill(ctx, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // cancels this process's SIGKILL timer
		t.Fatal(err)
	}
	r = newRuntime(t, data)
	t.Cleanup(func() { _ = r.Close() })
	tk, err = r.Lookup(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tk.Wait(ctx)
	if err != nil || st.Code != 137 {
		t.Fatalf("wait: %+v %v, want 137 (SIGKILL after the grace period)", st, err)
	}
	if err := tk.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWaitSurvivesContainerdCrash blocks in Wait while the supervised child containerd is
// SIGKILLed and restarted; the task keeps running in its shim and Wait gets its exit.
func TestWaitSurvivesContainerdCrash(t *testing.T) {
	requireContainerd(t)
	data, err := os.MkdirTemp("", "kfpbox-crash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { containerdtest.Unmount(data); _ = os.RemoveAll(data) })
	r := newRuntimeOn(t, data)
	if r.Daemon() == nil {
		t.Skip("a system containerd answers at " + containerd.DefaultSocket + "; this test needs a child containerd")
	}
	ctx := ctxT(t)
	if err := containerdtest.ImportBusyboxClient(namespaces.WithNamespace(ctx, containerd.DefaultNamespace), r.Client(), testImage); err != nil {
		t.Fatal(err)
	}
	ctl := t.TempDir()
	spec := newSpec(t, "sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.02; done; echo after; exit 4")
	spec.Mounts = []runtime.Mount{{Source: ctl, Target: "/ctl"}}
	tk, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  runtime.ExitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := tk.Wait(ctx)
		done <- result{st, err}
	}()
	if err := syscall.Kill(r.Daemon().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Daemon().Crashes():
	case <-ctx.Done():
		t.Fatal("crash not reported")
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.st.Code != 4 {
		t.Fatalf("wait across a containerd crash: %+v %v, want code 4", res.st, res.err)
	}
	if !strings.Contains(readLog(spec.LogPath), "stdout after") {
		t.Errorf("log: %s", readLog(spec.LogPath))
	}
	if err := tk.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestPullFromRegistry pulls the busybox image from an in-process registry on 127.0.0.1:
// explicitly with progress, and implicitly when a task's image is missing (IfNotPresent).
func TestPullFromRegistry(t *testing.T) {
	requireContainerd(t)
	h, err := containerdtest.Registry()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := ctxT(t)
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: env.daemon.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, containerd.DefaultNamespace)
	var last, total int64
	calls := 0
	name, err := containerd.PullImage(nctx, c, host+"/team/bb:pulled", "", func(d, tot int64) { calls, last, total = calls+1, d, tot })
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if name != host+"/team/bb:pulled" || calls == 0 || last != total || total < 1<<20 {
		t.Errorf("pull: name %q, %d progress calls, last %d/%d", name, calls, last, total)
	}
	t.Cleanup(func() { _ = containerd.RemoveImage(nctx, c, name) })

	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	spec := newSpec(t, "echo", "pulled")
	spec.Image = host + "/team/bb:implicit"
	st, log := run(t, r, spec)
	if st.Code != 0 || !strings.Contains(log, "stdout pulled") {
		t.Errorf("task on an implicitly pulled image: %+v %q", st, log)
	}
	_ = containerd.RemoveImage(nctx, c, spec.Image)
}

// TestCommandNotFound: the init reports a missing executable like a shell does.
func TestCommandNotFound(t *testing.T) {
	requireContainerd(t)
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	st, log := run(t, r, newSpec(t, "no-such-command", "x"))
	if st.Code != 127 || !strings.Contains(log, `stderr kfp-box-init: exec: "no-such-command": executable file not found`) {
		t.Errorf("status %+v, log %q; want 127 and the reason", st, log)
	}
}

// TestWithoutInit runs tasks without kfp-box-init: the task is PID 1, and this test binary
// is the log binary (TestMain routes the shim's invocation to LoggerMain), as kfp-box
// itself is when kfp-box-init is not installed.
func TestWithoutInit(t *testing.T) {
	requireContainerd(t)
	r, err := containerd.New(ctxT(t), containerd.Config{Address: env.daemon.Address(), InitBinary: "none", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	st, log := run(t, r, newSpec(t, "sh", "-c", "echo pid=$$; echo oops >&2; exit 3"))
	if st.Code != 3 || !strings.Contains(log, "stdout pid=1\n") || !strings.Contains(log, "stderr oops\n") {
		t.Errorf("status %+v, log %q", st, log)
	}
}

// TestImageUser runs tasks as Kubernetes does: as the image's user, unless the platform
// spec's runAsUser and runAsGroup say otherwise.
func TestImageUser(t *testing.T) {
	requireContainerd(t)
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	const userImage = "127.0.0.1:1/kfp-box/busybox:user" // USER 1234:5678
	if err := containerdtest.ImportBusyboxUser(namespaces.WithNamespace(ctxT(t), containerd.DefaultNamespace), r.Client(), userImage, "1234:5678"); err != nil {
		t.Fatal(err)
	}
	uid, gid := int64(4242), int64(4343)
	tests := []struct {
		name        string
		image       string
		user, group *int64
		want        string
	}{
		{"image without a user", testImage, nil, nil, "0:0"},
		{"image's user", userImage, nil, nil, "1234:5678"},
		{"runAsUser and runAsGroup", userImage, &uid, &gid, "4242:4343"},
		{"runAsUser", userImage, &uid, nil, "4242:0"},
		{"runAsGroup", userImage, nil, &gid, "1234:4343"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(t, "sh", "-c", `echo "$(id -u):$(id -g)"`)
			spec.Image, spec.User, spec.Group = tt.image, tt.user, tt.group
			st, log := run(t, r, spec)
			if st.Code != 0 || !strings.Contains(log, "stdout "+tt.want+"\n") {
				t.Errorf("exit %d, log:\n%s\nwant the task to run as %s", st.Code, log, tt.want)
			}
		})
	}
}
