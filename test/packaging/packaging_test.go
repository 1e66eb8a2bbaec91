// Package packaging tests the release files as a user gets them: `make dist` builds the
// Debian packages and tarballs, packaging/install.sh installs the amd64 .deb into a fresh
// Debian root with dpkg --root (so its maintainer scripts run, chrooted there), systemd
// checks the installed unit, the installed binary serves with the packaged config and runs a
// pipeline through the API, and removing and purging the package keep and then delete the
// data. The arm64 binary is checked with file(1) and run under qemu-user.
//
// It needs root (dpkg --root chroots to run maintainer scripts), dpkg, systemd-analyze,
// file, qemu-aarch64-static, the arm64 cross compiler and the Debian root filesystem
// scripts/python-test-image.sh caches; `make deps` installs them all. KFPBOX_DIST=DIR tests
// the files of an earlier `make dist` instead of building them.
package packaging

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/syncbuf"
	"github.com/kfp-box/kfp-box/internal/testmaterial"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			testmaterial.Missing(t, "%s is not installed (make deps installs it)", c)
		}
	}
}

var (
	distOnce sync.Once
	distDir  string
	distErr  error
	distTmp  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if distTmp != "" {
		os.RemoveAll(distTmp)
	}
	os.Exit(code)
}

// dist builds the release files once for the whole test binary, or returns $KFPBOX_DIST.
func dist(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KFPBOX_DIST"); d != "" {
		return d
	}
	need(t, "make", "aarch64-linux-gnu-gcc")
	distOnce.Do(func() {
		distTmp, distErr = os.MkdirTemp("", "kfp-box-dist-")
		if distErr != nil {
			return
		}
		distDir = filepath.Join(distTmp, "dist")
		cmd := exec.Command("make", "--no-print-directory", "dist", "DIST_DIR="+distDir)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			distErr = fmt.Errorf("make dist: %v\n%s", err, out)
		}
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return distDir
}

func one(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("%s in %s: %v, want exactly one", pattern, dir, m)
	}
	return m[0]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		testmaterial.Missing(t, "dpkg --root runs the maintainer scripts chrooted, which needs root (run the test as root)")
	}
	need(t, "dpkg", "dpkg-deb", "systemd-analyze", "file", "qemu-aarch64-static", "sha256sum", "tar")
	rootfs, why := containerdtest.PythonRootfs()
	if rootfs == "" {
		testmaterial.Missing(t, "no fresh Debian root to install into: %s", why)
	}
	d := dist(t)
	run(t, d, nil, "sha256sum", "-c", "SHA256SUMS")
	deb := one(t, d, "kfp-box_*_amd64.deb")
	one(t, d, "kfp-box_*_arm64.deb")
	if fi, _ := os.Stat(deb); fi != nil {
		t.Logf("%s: %.1f MiB", filepath.Base(deb), float64(fi.Size())/(1<<20))
	}

	// The package's control data: the conffile and the scripts are there.
	ctl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/kfp-box/config.yaml" {
		t.Errorf("conffiles = %q, want /etc/kfp-box/config.yaml", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if _, err := os.Stat(filepath.Join(ctl, s)); err != nil {
			t.Errorf("no %s in the package: %v", s, err)
		}
	}

	// A fresh Debian root (debootstrap's minbase, as cached by make deps).
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "", nil, "tar", "-xf", rootfs, "-C", root, "--exclude=./dev/*")
	if strings.Contains(readFile(t, filepath.Join(root, "etc", "passwd")), "kfp-box-task:") {
		t.Fatal("the fresh root already has the kfp-box-task user")
	}

	// install.sh picks the amd64 .deb from the directory, checks it against SHA256SUMS and
	// runs dpkg --root, which runs the postinst chrooted in the fresh root.
	out := run(t, "", []string{"KFPBOX_INSTALL_ARCH=amd64"}, "sh", filepath.Join(repoRoot(t), "packaging", "install.sh"), "--root", root, d)
	for _, want := range []string{"checksum of " + filepath.Base(deb) + " matches SHA256SUMS", "Setting up kfp-box", "web UI and KFP API  http://127.0.0.1:8888", "S3 endpoint         http://127.0.0.1:9000", "/var/lib/kfp-box/auth/admin-token"} {
		if !strings.Contains(out, want) {
			t.Errorf("install.sh output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(strings.ToLower(out), "secret_key") {
		t.Errorf("install.sh printed a secret:\n%s", out)
	}
	status := run(t, "", nil, "dpkg", "--root="+root, "-s", "kfp-box")
	if !strings.Contains(status, "Status: install ok installed") {
		t.Fatalf("dpkg -s after install:\n%s", status)
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "etc", "passwd")), "kfp-box-task:") {
		t.Error("the postinst did not make the kfp-box-task user")
	}
	data := filepath.Join(root, "var", "lib", "kfp-box")
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/kfp-box after install: %v, %v; want a 0700 directory", fi, err)
	}
	for _, p := range []string{"usr/bin/kfp-box", "usr/bin/kfp-box-init", "etc/kfp-box/config.yaml", "lib/systemd/system/kfp-box.service"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}

	// systemd accepts the installed unit (and finds its ExecStart in that root). The fresh
	// root has no systemd (debootstrap's minbase), so the targets every unit depends on
	// (sysinit.target, multi-user.target...) are copied in from this machine's systemd.
	unit := filepath.Join(root, "lib", "systemd", "system", "kfp-box.service")
	targets, _ := filepath.Glob("/lib/systemd/system/*.target")
	if len(targets) == 0 {
		testmaterial.Missing(t, "no systemd targets in /lib/systemd/system (make deps installs systemd)")
	}
	for _, tg := range targets {
		dst := filepath.Join(root, "lib", "systemd", "system", filepath.Base(tg))
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if b, err := os.ReadFile(tg); err == nil {
			_ = os.WriteFile(dst, b, 0o644)
		}
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "/lib/systemd/system/kfp-box.service").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	for _, want := range []string{"KillMode=process", "StateDirectory=kfp-box", "ExecStart=/usr/bin/kfp-box serve --config /etc/kfp-box/config.yaml"} {
		if !strings.Contains(readFile(t, unit), want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}

	t.Run("serve", func(t *testing.T) { serveInstalled(t, root) })

	// Remove keeps the data and the user; purge deletes the data and the config.
	marker := filepath.Join(data, "keep-me")
	if err := os.WriteFile(marker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(t, "", nil, "dpkg", "--root="+root, "-r", "kfp-box")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("dpkg -r deleted the data: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "kfp-box")); err == nil {
		t.Error("dpkg -r left /usr/bin/kfp-box")
	}
	if _, err := os.Stat(filepath.Join(root, "etc", "kfp-box", "config.yaml")); err != nil {
		t.Errorf("dpkg -r removed the conffile (only purge may): %v", err)
	}
	if !strings.Contains(out, "data kept in /var/lib/kfp-box") {
		t.Errorf("dpkg -r does not say where the data is:\n%s", out)
	}
	run(t, "", nil, "dpkg", "--root="+root, "-P", "kfp-box")
	for _, p := range []string{data, filepath.Join(root, "etc", "kfp-box", "config.yaml")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "etc", "passwd")), "kfp-box-task:") {
		t.Error("purge removed the kfp-box-task user (its uid may own files elsewhere)")
	}
}

// serveInstalled starts the installed binary with the packaged config (only the data
// directory and the ports moved, by environment) and runs the container example with the
// installed CLI, then checks the run through the API.
func serveInstalled(t *testing.T, root string) {
	bin := filepath.Join(root, "usr", "bin", "kfp-box")
	data := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(root, "etc", "kfp-box", "config.yaml"))
	// The packaged runtime is auto; the host runtime here, because the example's busybox image
	// cannot be pulled offline. Everything else is as packaged.
	cmd.Env = append(os.Environ(), "KFPBOX_DATA_DIR="+data, "KFPBOX_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"KFPBOX_S3_LISTEN=127.0.0.1:"+strconv.Itoa(freePort(t)), "KFPBOX_RUNTIME=host")
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := client.Get(url + "/apis/v2beta1/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("the installed kfp-box exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed kfp-box did not answer healthz in 60 s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Neither the S3 secret key nor the admin token reaches the service's output (the journal).
	var creds struct {
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(data, "s3-credentials.json"))), &creds); err != nil || creds.SecretKey == "" {
		t.Fatalf("s3-credentials.json: %v (no secret_key)", err)
	}
	for name, secret := range map[string]string{"the S3 secret key": creds.SecretKey, "the admin token": strings.TrimSpace(readFile(t, filepath.Join(data, "auth", "admin-token")))} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("serve printed %s", name)
		}
	}

	tokenFile := filepath.Join(data, "auth", "admin-token")
	sub := run(t, repoRoot(t), nil, bin, "run", "submit", "examples/hello-container.yaml", "-p", "name=package",
		"--server", url, "--token-file", tokenFile, "--watch", "--interval", "200ms")
	id := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(sub)
	if id == "" {
		t.Fatalf("no run id in the submit output:\n%s", sub)
	}
	req, _ := http.NewRequest("GET", url+"/apis/v2beta1/runs/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(readFile(t, tokenFile)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		State      string `json:"state"`
		RunDetails struct {
			TaskDetails []struct {
				DisplayName string `json:"display_name"`
				State       string `json:"state"`
			} `json:"task_details"`
		} `json:"run_details"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET run %s = %d %s (%v)", id, resp.StatusCode, raw, err)
	}
	if r.State != "SUCCEEDED" {
		t.Fatalf("run state %s, want SUCCEEDED:\n%s", r.State, raw)
	}
	ok := map[string]bool{}
	for _, td := range r.RunDetails.TaskDetails {
		ok[td.DisplayName] = td.State == "SUCCEEDED"
	}
	if !ok["say"] || !ok["count"] {
		t.Errorf("tasks say and count did not both succeed: %s", raw)
	}
	logs := run(t, repoRoot(t), nil, bin, "run", "logs", id, "count", "--server", url, "--token-file", tokenFile)
	if want := `"hello, package" has 14 characters`; !strings.Contains(logs, want) {
		t.Errorf("count's log lacks %q:\n%s", want, logs)
	}
}

// TestArm64Binary: the arm64 package holds an aarch64 binary that runs (under qemu-user).
func TestArm64Binary(t *testing.T) {
	need(t, "dpkg-deb", "file", "qemu-aarch64-static")
	d := dist(t)
	deb := one(t, d, "kfp-box_*_arm64.deb")
	x := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, x)
	if arch := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, "Architecture")); arch != "arm64" {
		t.Errorf("Architecture: %s, want arm64", arch)
	}
	for _, b := range []string{"kfp-box", "kfp-box-init"} {
		desc := run(t, "", nil, "file", "-b", filepath.Join(x, "usr", "bin", b))
		if !strings.Contains(desc, "ARM aarch64") {
			t.Errorf("file %s: %s, want an ARM aarch64 executable", b, desc)
		}
	}
	// kfp-box is linked against glibc (NVML is loaded with dlopen through cgo); qemu finds
	// the arm64 loader and libc in Debian's cross libc (libc6-arm64-cross).
	out := run(t, "", nil, "qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", filepath.Join(x, "usr", "bin", "kfp-box"), "version")
	if !strings.HasPrefix(out, "kfp-box ") {
		t.Errorf("kfp-box version under qemu-aarch64: %q", out)
	}
	if desc := run(t, "", nil, "file", "-b", filepath.Join(x, "usr", "bin", "kfp-box-init")); !strings.Contains(desc, "statically linked") {
		t.Errorf("kfp-box-init is not static (it runs inside any image): %s", desc)
	}

	// The tarball, installed by install.sh into an empty root: binaries in /usr/local/bin,
	// the unit pointing there, the config in /etc/kfp-box.
	tgz := one(t, d, "kfp-box_*_linux_arm64.tar.gz")
	root := t.TempDir()
	out = run(t, "", []string{"KFPBOX_INSTALL_ARCH=arm64"}, "sh", filepath.Join(repoRoot(t), "packaging", "install.sh"), "--root", root, tgz)
	for _, p := range []string{"usr/local/bin/kfp-box", "usr/local/bin/kfp-box-init", "etc/kfp-box/config.yaml", "var/lib/kfp-box"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("install.sh from the tarball: %v\n%s", err, out)
		}
	}
	if unit := readFile(t, filepath.Join(root, "etc", "systemd", "system", "kfp-box.service")); !strings.Contains(unit, "ExecStart=/usr/local/bin/kfp-box serve ") {
		t.Errorf("the tarball's unit does not start /usr/local/bin/kfp-box:\n%s", unit)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
