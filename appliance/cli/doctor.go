package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/host"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

func init() { register(newDoctorCmd) }

// checkLevel grades one doctor check.
type checkLevel int

const (
	checkOK checkLevel = iota
	checkWarn
	checkFail
)

func (l checkLevel) String() string {
	return [...]string{"ok", "warn", "FAIL"}[l]
}

// checkResult is one line of `kfp-box doctor`.
type checkResult struct {
	Name   string
	Level  checkLevel
	Detail string
	// Fix says what to do when Level is not ok.
	Fix string
}

// doctorEnv is what the checks read from the machine; tests replace parts of it.
type doctorEnv struct {
	cfg      appliance.Config
	lookPath func(string) (string, error)
	output   func(name string, args ...string) (string, error)
	stat     func(string) (os.FileInfo, error)
	probe    func(ctx context.Context) error
	// hostRuntime reports whether the host runtime can give tasks mount namespaces.
	hostRuntime func() error
	python      func(ctx context.Context, requested string) pyenv.Interpreter
}

func newDoctorEnv(cfg appliance.Config) doctorEnv {
	return doctorEnv{
		cfg:      cfg,
		lookPath: exec.LookPath,
		output: func(name string, args ...string) (string, error) {
			b, err := exec.Command(name, args...).CombinedOutput()
			return strings.TrimSpace(string(b)), err
		},
		stat: os.Stat,
		probe: func(ctx context.Context) error {
			return containerd.Probe(ctx, containerd.ProbeOptions{Address: containerdSettings(cfg).Address, DataDir: cfg.DataDir})
		},
		hostRuntime: host.Available,
		python:      pyenv.Probe,
	}
}

// newDoctorCmd is `kfp-box doctor`: it checks what the box needs on this machine and says
// how to fix what is missing. It exits 1 when a check fails.
func newDoctorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what kfp-box needs, with a fix for each problem",
		Long: `Checks the data directory, free disk, containerd, runc, the host runtime, kfp-box-init,
cgroups, the NVIDIA driver (NVML) and the API and S3 ports, using the same configuration as
'serve' (flags, KFPBOX_* environment, --config). Each check is graded by what the box needs
with that configuration: with --runtime auto or host, a missing containerd or runc is a
warning (tasks run as host processes). Ports held by a running kfp-box (its API or its S3
server) are reported as the box's. Exits 1 when a check fails; warnings do not fail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, _ := cmd.Flags().GetString("config")
			cfg, err := appliance.Load(file, os.Getenv, cmd.Flags())
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			results := runChecks(ctx, newDoctorEnv(cfg))
			if failed := printChecks(cmd.OutOrStdout(), results); failed > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("doctor: %d check(s) failed", failed)}
			}
			return nil
		},
	}
	appliance.AddFlags(cmd.Flags())
	return cmd
}

// runChecks runs every check in order.
func runChecks(ctx context.Context, e doctorEnv) []checkResult {
	out := []checkResult{checkDataDir(e), checkDisk(e)}
	out = append(out, checkContainerd(ctx, e)...)
	out = append(out, checkInit(e), checkCgroups(e), checkNVML(e), checkPython(ctx, e))
	out = append(out, checkPort(ctx, "api port", e.cfg.Listen, "--listen", boxAPI))
	if e.cfg.S3Listen != "" && e.cfg.S3Listen != "off" {
		out = append(out, checkPort(ctx, "s3 port", e.cfg.S3Listen, "--s3-listen", boxS3))
	}
	return out
}

// printChecks writes one line per check and the fix under each problem; it returns the
// number of failures.
func printChecks(w io.Writer, results []checkResult) int {
	failed := 0
	for _, r := range results {
		fmt.Fprintf(w, "[%-4s] %-12s %s\n", r.Level, r.Name, r.Detail)
		if r.Level != checkOK && r.Fix != "" {
			fmt.Fprintf(w, "       %-12s fix: %s\n", "", r.Fix)
		}
		if r.Level == checkFail {
			failed++
		}
	}
	return failed
}

// checkDataDir checks that the data directory exists and is writable, or can be created.
func checkDataDir(e doctorEnv) checkResult {
	dir := e.cfg.DataDir
	r := checkResult{Name: "data dir"}
	st, err := e.stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := existingParent(e, dir)
		if canWrite(parent) {
			r.Detail = fmt.Sprintf("%s does not exist yet; serve creates it (in %s)", dir, parent)
			return r
		}
		r.Level, r.Detail = checkFail, fmt.Sprintf("%s does not exist and %s is not writable", dir, parent)
		r.Fix = fmt.Sprintf("sudo mkdir -p %s && sudo chown $(id -u) %s, or choose --data-dir", dir, dir)
	case err != nil:
		r.Level, r.Detail, r.Fix = checkFail, err.Error(), "choose another --data-dir"
	case !st.IsDir():
		r.Level, r.Detail, r.Fix = checkFail, dir+" is not a directory", "remove it or choose another --data-dir"
	case !canWrite(dir):
		r.Level, r.Detail = checkFail, dir+" is not writable by this user"
		r.Fix = fmt.Sprintf("sudo chown -R $(id -u) %s, or run kfp-box as its owner", dir)
	default:
		r.Detail = dir + " is writable"
	}
	return r
}

// canWrite reports whether the current user may write into dir.
func canWrite(dir string) bool {
	return syscall.Access(dir, 0x2 /* W_OK */) == nil
}

// existingParent is the nearest existing ancestor of path.
func existingParent(e doctorEnv, path string) string {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if _, err := e.stat(p); err == nil || p == filepath.Dir(p) {
			return p
		}
	}
}

// checkDisk checks the free space where the data directory lives.
func checkDisk(e doctorEnv) checkResult {
	dir := e.cfg.DataDir
	if _, err := e.stat(dir); err != nil {
		dir = existingParent(e, dir)
	}
	r := checkResult{Name: "disk"}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		r.Level, r.Detail, r.Fix = checkWarn, "cannot read free space: "+err.Error(), "check the filesystem of --data-dir"
		return r
	}
	free := fs.Bavail * uint64(fs.Bsize)
	r.Detail = fmt.Sprintf("%s free on %s", humanize.IBytes(free), dir)
	switch {
	case free < 2<<30:
		r.Level, r.Fix = checkFail, "free disk space (images, artifacts and logs live there) or move --data-dir"
	case free < 10<<30:
		r.Level, r.Fix = checkWarn, "images and artifacts fill disks quickly; keep 10 GiB or more free"
	}
	return r
}

// checkContainerd checks the containerd backend, runc and the host runtime, each graded
// by what the configured runtime needs: with --runtime containerd a missing containerd or
// runc fails; with auto or host both are warnings, since tasks then run as host processes
// (auto falls back to them). The host runtime itself is a warning when it cannot give tasks
// mount namespaces: it still runs the tasks that mount nothing.
func checkContainerd(ctx context.Context, e doctorEnv) []checkResult {
	ctd := checkResult{Name: "containerd"}
	runc := checkResult{Name: "runc"}
	hostRT := checkResult{Name: "host runtime"}
	hostErr := errors.New("not checked")
	if e.hostRuntime != nil {
		hostErr = e.hostRuntime()
	}
	switch {
	case hostErr == nil:
		hostRT.Detail = "tasks can run as host processes with private mount namespaces"
	case e.cfg.Runtime == containerd.ID:
		hostRT.Level, hostRT.Detail = checkWarn, hostErr.Error()+" (not used: --runtime containerd)"
		hostRT.Fix = "run kfp-box as root for --runtime host or auto"
	default:
		// Without mount namespaces the host runtime still runs tasks that mount nothing.
		hostRT.Level, hostRT.Detail = checkWarn, hostErr.Error()+"; tasks with volume or secret mounts fail"
		hostRT.Fix = "run kfp-box as root (the packaged service does)"
	}
	// needContainer: without containerd or runc the box cannot run its tasks at all.
	needContainer := e.cfg.Runtime == containerd.ID

	if p, err := e.lookPath("runc"); err != nil {
		runc.Level, runc.Detail, runc.Fix = checkFail, "runc not found in PATH", "apt-get install runc"
		if !needContainer {
			runc.Level = checkWarn
			runc.Detail += fmt.Sprintf(" (--runtime %s runs tasks as host processes without it)", e.cfg.Runtime)
			runc.Fix = "apt-get install containerd runc to run tasks in containers"
		}
	} else {
		v, _ := e.output(p, "--version")
		runc.Detail = firstLine(v)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := e.probe(pctx)
	version := ""
	if p, lerr := e.lookPath("containerd"); lerr == nil {
		v, _ := e.output(p, "--version")
		version = firstLine(v)
	}
	switch {
	case err == nil:
		ctd.Detail = "usable"
		if version != "" {
			ctd.Detail += " (" + version + ")"
		}
	case needContainer:
		ctd.Level, ctd.Detail = checkFail, err.Error()
		ctd.Fix = "apt-get install containerd runc, run as root, or set --containerd-address; --runtime host runs tasks without containers"
	case e.cfg.Runtime == host.ID:
		ctd.Level, ctd.Detail = checkWarn, "not usable, and --runtime host does not need it: "+err.Error()
		ctd.Fix = "apt-get install containerd runc to run tasks in containers"
	default:
		ctd.Level, ctd.Detail = checkWarn, err.Error()+" (--runtime auto falls back to host processes)"
		ctd.Fix = "apt-get install containerd runc, run as root, or set --containerd-address"
	}
	return []checkResult{ctd, runc, hostRT}
}

// checkInit looks for kfp-box-init, each container task's PID 1 and log binary.
func checkInit(e doctorEnv) checkResult {
	r := checkResult{Name: "kfp-box-init"}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), containerd.InitBinaryName)
		if _, err := e.stat(p); err == nil {
			r.Detail = p
			return r
		}
	}
	if p, err := e.lookPath(containerd.InitBinaryName); err == nil {
		r.Detail = p
		return r
	}
	r.Level, r.Detail = checkWarn, "not found next to kfp-box or in PATH; tasks run as PID 1 (SIGTERM may be ignored until the grace period ends) and kfp-box itself writes their logs"
	r.Fix = "install kfp-box-init next to the kfp-box binary (make build builds it)"
	return r
}

// checkCgroups reports the cgroup version and whether CPU and memory limits can be set.
func checkCgroups(e doctorEnv) checkResult {
	r := checkResult{Name: "cgroups"}
	if _, err := e.stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		ctrl := " " + strings.TrimSpace(string(b)) + " "
		if strings.Contains(ctrl, " cpu ") && strings.Contains(ctrl, " memory ") {
			r.Detail = "v2 (unified), cpu and memory controllers available"
			return r
		}
		r.Level, r.Detail = checkWarn, "v2 without the cpu or memory controller ("+strings.TrimSpace(ctrl)+"); limits are not enforced"
		r.Fix = "enable the controllers (systemd: Delegate=yes, or boot with cgroup_enable=memory)"
		return r
	}
	var missing []string
	for _, c := range []string{"cpu", "memory"} {
		if _, err := e.stat("/sys/fs/cgroup/" + c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		r.Level, r.Detail = checkWarn, "v1 without "+strings.Join(missing, ", ")+"; limits are not enforced"
		r.Fix = "mount the cgroup controllers (a standard systemd boot does) or boot with cgroup_enable=memory"
		return r
	}
	r.Detail = "v1, cpu and memory controllers mounted"
	return r
}

// checkNVML looks for the NVIDIA driver's NVML library and device nodes.
func checkNVML(e doctorEnv) checkResult {
	r := checkResult{Name: "nvml"}
	lib := ""
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64"} {
		if _, err := e.stat(filepath.Join(d, "libnvidia-ml.so.1")); err == nil {
			lib = filepath.Join(d, "libnvidia-ml.so.1")
			break
		}
	}
	if lib == "" {
		r.Level, r.Detail = checkWarn, "libnvidia-ml.so.1 not found: no GPUs for tasks"
		r.Fix = "install the NVIDIA driver (e.g. apt-get install nvidia-driver) if this machine has GPUs"
		return r
	}
	if _, err := e.stat("/dev/nvidiactl"); err != nil {
		r.Level, r.Detail = checkWarn, lib+" found but /dev/nvidiactl is missing"
		r.Fix = "load the driver (modprobe nvidia) or run nvidia-smi once to create the device nodes"
		return r
	}
	r.Detail = lib + " and /dev/nvidiactl present"
	return r
}

// checkPort checks that addr is free, or already served by a running kfp-box: its API
// (healthz answers as kfp-box's does) or its S3 server (the box's health path answers), so
// that doctor run beside a running box reports its ports as the box's, not as taken.
func checkPort(ctx context.Context, name, addr, flag string, ours func(context.Context, string) (string, bool)) checkResult {
	r := checkResult{Name: name}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		_ = l.Close()
		r.Detail = addr + " is free"
		return r
	}
	if what, ok := ours(ctx, addr); ok {
		r.Detail = addr + " is served by " + what
		return r
	}
	r.Level, r.Detail = checkFail, fmt.Sprintf("cannot listen on %s: %v", addr, err)
	r.Fix = fmt.Sprintf("stop what uses %s (ss -ltnp) or choose another %s", addr, flag)
	return r
}

// dialAddr turns a listen address into one to connect to: an unspecified host (":8888",
// "0.0.0.0:8888", "[::]:8888") is reached on loopback.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// probeGet GETs http://addr/path with a short deadline and returns the status and the
// start of the body.
func probeGet(ctx context.Context, addr, path string) (int, []byte, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dialAddr(addr)+path, nil)
	if err != nil {
		return 0, nil, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, b, true
}

// boxAPI reports whether addr is a running kfp-box's API: its healthz answers without a
// credential, in KFP's shape, with the box's pipeline store.
func boxAPI(ctx context.Context, addr string) (string, bool) {
	code, body, ok := probeGet(ctx, addr, "/apis/v2beta1/healthz")
	if !ok || code != http.StatusOK {
		return "", false
	}
	var hz struct {
		TagName       string `json:"tag_name"`
		PipelineStore string `json:"pipeline_store"`
	}
	if json.Unmarshal(body, &hz) != nil || hz.PipelineStore == "" {
		return "", false
	}
	what := "a running kfp-box's API"
	if hz.TagName != "" {
		what += " (" + hz.TagName + ")"
	}
	return what, true
}

// boxS3 reports whether addr is a running kfp-box's S3 server: its health path answers 200
// and a request without credentials gets an S3 error document, not a page.
func boxS3(ctx context.Context, addr string) (string, bool) {
	if code, _, ok := probeGet(ctx, addr, s3server.HealthPath); !ok || code != http.StatusOK {
		return "", false
	}
	code, body, ok := probeGet(ctx, addr, "/")
	if !ok || code < 400 || !bytes.Contains(body, []byte("<Error>")) {
		return "", false
	}
	return "a running kfp-box's S3 server", true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// checkPython checks --host-python, the interpreter of host-runtime tasks: it must run and
// have venv and ensurepip, since every host task that runs Python gets a venv of its own.
func checkPython(ctx context.Context, e doctorEnv) checkResult {
	r := checkResult{Name: "host python"}
	if e.python == nil {
		r.Level, r.Detail = checkWarn, "not checked"
		return r
	}
	in := e.python(ctx, e.cfg.HostPython)
	if in.Problem != "" {
		r.Level, r.Detail = checkWarn, in.Problem+" (host-runtime tasks that run Python will fail)"
		r.Fix = pyenv.AptFix + ", or --host-python PATH"
		return r
	}
	r.Detail = fmt.Sprintf("%s (Python %s) with venv and ensurepip", in.Path, in.Version)
	if in.ExternallyManaged {
		r.Detail += "; externally managed (PEP 668): tasks pip-install into venvs of their own"
	}
	return r
}
