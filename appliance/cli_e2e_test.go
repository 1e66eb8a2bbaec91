package appliance_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/cli"
	"github.com/kfp-box/kfp-box/internal/syncbuf"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
)

// TestCLIRunTasks drives the run commands against a whole box (host runtime, caching on)
// with a two-task pipeline whose first task is cached: submit --watch shows each task's
// state changes and a final table; a second run's cache hit is marked, with the run it
// reused, by --watch and by run get; run logs prints every task's log with a task prefix,
// --task narrows; short run-id prefixes work.
func TestCLIRunTasks(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.CacheEnabled = "host", true })
	addr := b.a.Addr()
	file := filepath.Join(testdata, "two_tasks.yaml")

	submit := func() (string, string) {
		t.Helper()
		code, out, errs := runCLI(t, addr, "run", "submit", file, "--watch", "--interval", "50ms")
		if code != 0 {
			t.Fatalf("run submit --watch: exit %d\n%s%s", code, out, errs)
		}
		m := regexp.MustCompile(`run (\S+) submitted`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no run id in %q", out)
		}
		return m[1], out
	}
	first, out := submit()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  task hello  SUCCEEDED$`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  task world  SUCCEEDED$`),
		regexp.MustCompile(`(?m)^TASK +STATE +DURATION +CACHED FROM$`),
		regexp.MustCompile(`(?m)^hello +SUCCEEDED +[0-9.]+(ms|s|m[0-9.]*s) +-$`),
		regexp.MustCompile(`(?m)^world +SUCCEEDED +[0-9.]+(ms|s|m[0-9.]*s) +-$`),
		regexp.MustCompile(`(?m)^run ` + first + ` SUCCEEDED in [0-9.]+(ms|s|m[0-9.]*s)$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("first submit --watch output does not match %s:\n%s", want, out)
		}
	}
	// The world task waits for hello: its SUCCEEDED line cannot come before hello's.
	if strings.Index(out, "task world  SUCCEEDED") < strings.Index(out, "task hello  SUCCEEDED") {
		t.Errorf("task state changes out of order:\n%s", out)
	}

	second, out := submit()
	cachedLine := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  task hello  (CACHED|SUCCEEDED)  \(cached from run ` + first + ` \(task hello\)\)$`)
	if !cachedLine.MatchString(out) {
		t.Errorf("second submit --watch does not mark the cache hit with its source run %s:\n%s", first, out)
	}
	cachedRow := regexp.MustCompile(`(?m)^hello +(CACHED|SUCCEEDED) +- +run ` + first + ` \(task hello\)$`)
	if !cachedRow.MatchString(out) {
		t.Errorf("the final table of the second run lacks the cached row:\n%s", out)
	}

	// run get with a short prefix of the id marks the cache hit; the task that ran is not.
	code, out, errs := runCLI(t, addr, "run", "get", second[:8])
	if code != 0 || !regexp.MustCompile(`Run ID:\s+`+second).MatchString(out) || !cachedRow.MatchString(out) ||
		!regexp.MustCompile(`(?m)^world +SUCCEEDED +\S+ +-$`).MatchString(out) {
		t.Fatalf("run get %s: exit %d\n%s%s", second[:8], code, out, errs)
	}

	// run export takes a prefix too.
	archive := filepath.Join(t.TempDir(), "run.tar.gz")
	if code, out, errs = runCLI(t, addr, "run", "export", first[:8], "-o", archive); code != 0 || !strings.Contains(out, "run "+first+" exported") {
		t.Errorf("run export %s: exit %d %s%s", first[:8], code, out, errs)
	}

	// run logs: every container task, each line with its task's name, in task order.
	wantAll := "[hello] alpha line one\n[hello] alpha line two\n[world] beta got alpha\n"
	for _, args := range [][]string{{"run", "logs", first[:6]}, {"logs", first}} {
		code, out, errs = runCLI(t, addr, args...)
		if code != 0 || out != wantAll {
			t.Errorf("%s: exit %d, got\n%q\nwant\n%q\n%s", strings.Join(args, " "), code, out, wantAll, errs)
		}
	}
	// -f streams the tasks at once: lines of different tasks interleave, each task's stay in
	// order.
	code, out, errs = runCLI(t, addr, "run", "logs", "-f", first)
	if got, want := sortedLines(out), sortedLines(wantAll); code != 0 || got != want ||
		strings.Index(out, "[hello] alpha line one") > strings.Index(out, "[hello] alpha line two") {
		t.Errorf("run logs -f: exit %d, got\n%q\nwant the lines of\n%q\n%s", code, out, wantAll, errs)
	}
	// A cache hit shows the log of the execution it reused.
	if code, out, errs = runCLI(t, addr, "run", "logs", second); code != 0 || out != "[hello] alpha line one\n[hello] alpha line two\n[world] beta got alpha\n" {
		t.Errorf("run logs of the cached run: exit %d %q %s", code, out, errs)
	}
	// One task named: its log as it is; several: prefixed.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "logs", first, "world"}, "beta got alpha\n"},
		{[]string{"run", "logs", first, "--task", "hello"}, "alpha line one\nalpha line two\n"},
		{[]string{"run", "logs", first, "--task", "world", "--task", "hello"}, "[world] beta got alpha\n[hello] alpha line one\n[hello] alpha line two\n"},
	} {
		if code, out, errs = runCLI(t, addr, tc.args...); code != 0 || out != tc.want {
			t.Errorf("%s: exit %d, got %q, want %q %s", strings.Join(tc.args, " "), code, out, tc.want, errs)
		}
	}
	// Bad input is exit 2 with one line.
	for _, args := range [][]string{
		{"run", "logs", first, "--task", "nope"},
		{"run", "logs", "zzzz"},
		{"run", "get", "zzzz"},
	} {
		code, _, errs = runCLI(t, addr, args...)
		if code != 2 || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%s: exit %d, %q; want exit 2 and one line", strings.Join(args, " "), code, errs)
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestCLIImagesThroughBox runs the image commands with --server against a box with the
// containerd runtime: import uploads the tarball (with a progress bar) into the box's
// containerd, ls lists the box's images (the busybox TestMain imported there too), rm and
// pull act there; bad input is exit 2; a box with the host runtime says it keeps no images.
func TestCLIImagesThroughBox(t *testing.T) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	b := startBox(t, func(c *appliance.Config) { useContainerd(c, ctd.address) })
	addr := b.a.Addr()
	dir := t.TempDir()
	archive := filepath.Join(dir, "img.tar")
	var buf bytes.Buffer
	if err := containerdtest.WriteDockerArchive(&buf, "example.com/cli/via-api:1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(garbage, []byte("this is not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := containerdtest.Registry()
	if err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(h)
	defer reg.Close()
	registry := strings.TrimPrefix(reg.URL, "http://")
	t.Cleanup(func() { runCLI(t, addr, "image", "rm", registry+"/team/bb:api") })

	steps := []struct {
		args       []string
		code       int
		out, errIn []string
	}{
		{[]string{"image", "import", archive}, 0, []string{"imported example.com/cli/via-api:1"}, []string{"img.tar [", "] 1.9 MiB / 1.9 MiB"}},
		{[]string{"image", "ls"}, 0, []string{"example.com/cli/via-api:1", "docker.io/library/busybox:latest"}, nil},
		{[]string{"image", "ls", "-o", "json"}, 0, []string{`"name": "example.com/cli/via-api:1"`}, nil},
		{[]string{"image", "rm", "example.com/cli/via-api:1"}, 0, []string{"removed example.com/cli/via-api:1"}, nil},
		{[]string{"image", "rm", "example.com/cli/via-api:1"}, 1, nil, []string{"image not present"}},
		{[]string{"image", "import", garbage}, 2, nil, []string{"import"}},
		{[]string{"image", "pull", registry + "/team/bb:api"}, 0, []string{"pulled " + registry + "/team/bb:api"}, []string{"pulling " + registry + "/team/bb:api on the box", "/team/bb:api [", "] 1.9 MiB / 1.9 MiB"}},
		{[]string{"image", "pull", "127.0.0.1:1/none:1"}, 1, nil, []string{"127.0.0.1:1/none:1", "kfp-box image import"}},
		{[]string{"image", "pull", "Not A Ref"}, 2, nil, []string{"not an image reference"}},
	}
	for _, s := range steps {
		code, out, errs := runCLI(t, addr, s.args...)
		if code != s.code {
			t.Fatalf("kfp-box %s: exit %d, want %d:\n%s%s", strings.Join(s.args, " "), code, s.code, out, errs)
		}
		for _, w := range s.out {
			if !strings.Contains(out, w) {
				t.Errorf("kfp-box %s: stdout lacks %q:\n%s", strings.Join(s.args, " "), w, out)
			}
		}
		for _, w := range s.errIn {
			if !strings.Contains(errs, w) {
				t.Errorf("kfp-box %s: stderr lacks %q:\n%s", strings.Join(s.args, " "), w, errs)
			}
		}
	}
	// The image the box pulled is in its containerd: ls through the API shows it.
	if code, out, _ := runCLI(t, addr, "image", "ls"); code != 0 || !strings.Contains(out, registry+"/team/bb:api") || strings.Contains(out, "via-api") {
		t.Errorf("image ls after pull and rm: exit %d\n%s", code, out)
	}
	// The routes need the owner's token like every other.
	resp, err := http.Post(b.base+"/images:import", "multipart/form-data; boundary=x", strings.NewReader("--x--\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("images:import without a token: %d, want 401", resp.StatusCode)
	}
	// A read-scope token lists images but changes none.
	code, tok, errs := runCLI(t, addr, "token", "create", "reader", "--scope", "read")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errs)
	}
	readTok := filepath.Join(dir, "read.token")
	if err := os.WriteFile(readTok, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	asReader := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		root := cli.NewRoot(&out, &errb)
		root.SetArgs(append([]string{"--server", "http://" + addr, "--token-file", readTok}, args...))
		err := root.Execute()
		var ee *cli.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &ee):
			return ee.Code, err.Error()
		}
		return 1, err.Error()
	}
	if code, out := asReader("image", "ls"); code != 0 || !strings.Contains(out, "busybox") {
		t.Errorf("image ls with a read token: exit %d %s", code, out)
	}
	for _, args := range [][]string{{"image", "import", archive}, {"image", "rm", "example.com/none:1"}, {"image", "pull", registry + "/team/bb:api"}} {
		if code, msg := asReader(args...); code == 0 || !strings.Contains(msg, "read scope") {
			t.Errorf("%v with a read token: exit %d %s; want it refused", args, code, msg)
		}
	}
}

// TestCLIImagesHostRuntimeBox: a box with the host runtime keeps no images and says so.
func TestCLIImagesHostRuntimeBox(t *testing.T) {
	host := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	if code, _, errs := runCLI(t, host.a.Addr(), "image", "ls"); code != 1 || !strings.Contains(errs, "keeps no images") {
		t.Errorf("image ls on a host-runtime box: exit %d %s", code, errs)
	}
}

// TestCLILogsFollowRun follows a whole run with run logs -f: lines stream while the first
// task runs, the task that starts later is picked up, and the command ends with the run.
func TestCLILogsFollowRun(t *testing.T) {
	ctl := filepath.Join(t.TempDir(), "ctl")
	openToAll(t, ctl) // the task, an unprivileged user, looks for a file there
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	addr := b.a.Addr()
	code, out, errs := runCLI(t, addr, "run", "submit", filepath.Join(testdata, "wait_then_more.yaml"), "-p", "path="+filepath.Join(ctl, "go"))
	m := regexp.MustCompile(`run (\S+) submitted`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("submit: exit %d %s%s", code, out, errs)
	}
	var logs syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot(&logs, io.Discard)
		root.SetArgs([]string{"--server", "http://" + addr, "--token-file", b.a.AdminTokenPath(), "run", "logs", "-f", m[1][:8]})
		done <- root.Execute()
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "[wait] waiting\n") {
		select {
		case err := <-done:
			t.Fatalf("run logs -f ended before the task did: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no streamed line in a minute:\n%s", logs.String())
		}
	}
	if strings.Contains(logs.String(), "after ran") {
		t.Fatalf("the second task ran before the first ended:\n%s", logs.String())
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run logs -f: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("run logs -f did not end with the run:\n%s", logs.String())
	}
	// Lines of the two tasks come from two streams; each task's stay in order.
	got, want := logs.String(), "[wait] waiting\n[wait] done\n[after] after ran\n"
	if sortedLines(got) != sortedLines(want) || strings.Index(got, "[wait] done") < strings.Index(got, "[wait] waiting") {
		t.Errorf("run logs -f printed\n%q\nwant the lines of\n%q", got, want)
	}
}
