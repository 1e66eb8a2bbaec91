// Package containerdtest helps tests run real containers without downloading anything: it
// builds a busybox image from the host's static busybox (Debian's busybox-static) as an OCI
// layout or docker-archive tarball, builds the static kfp-box-init, and starts a private
// containerd. Tests of other packages (the engine's end-to-end tests) use it too.
package containerdtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kfp-box/kfp-box/runtime/containerd"
)

// BusyboxPath is Debian busybox-static's binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets are linked to busybox in the image's /bin.
var busyboxApplets = []string{
	"sh", "echo", "cat", "dd", "sleep", "id", "pwd", "true", "false", "ls", "touch", "env",
	"mkdir", "rm", "test", "[", "printf", "head", "tail", "wc", "kill", "seq", "grep", "sed",
	"mount", "df", "cp", "mv", "ps", "date", "yes", "stat", "hostname", "wget", "nc", "tr", "xargs",
}

// Prerequisites says what is missing to run containerd tests here ("" when nothing): the
// containerd, containerd-shim-runc-v2 and runc binaries, busybox-static, and root.
func Prerequisites() string {
	var missing []string
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		missing = append(missing, BusyboxPath+" (busybox-static)")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if len(missing) == 0 {
		return ""
	}
	return "missing " + strings.Join(missing, ", ") + "; run scripts/ensure-containerd.sh as root"
}

type file struct {
	name string
	mode int64
	body []byte
	link string // symlink target when not empty
	dir  bool
}

// layerTar builds the single layer: a root skeleton, busybox and its applet links.
func layerTar() ([]byte, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox (apt-get install busybox-static): %w", err)
	}
	files := []file{
		{name: "bin/", dir: true, mode: 0o755},
		{name: "dev/", dir: true, mode: 0o755},
		{name: "etc/", dir: true, mode: 0o755},
		{name: "proc/", dir: true, mode: 0o755},
		{name: "sys/", dir: true, mode: 0o755},
		{name: "root/", dir: true, mode: 0o700},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "usr/", dir: true, mode: 0o755},
		{name: "usr/bin/", dir: true, mode: 0o755},
		{name: "bin/busybox", mode: 0o755, body: bb},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, a := range busyboxApplets {
		files = append(files, file{name: "bin/" + a, link: "busybox"})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
		case f.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// imageParts returns the layer, config and manifest of the busybox image.
func imageParts() (layer, config, manifest []byte, err error) { return imagePartsUser("") }

// imagePartsUser is imageParts with the image config's User set (the image's default
// user, "uid[:gid]"; empty for root).
func imagePartsUser(user string) (layer, config, manifest []byte, err error) {
	layer, err = layerTar()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := map[string]any{
		"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		"Cmd":        []string{"sh"},
		"WorkingDir": "/",
	}
	if user != "" {
		cfg["User"] = user
	}
	config, err = json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + sha(layer)}},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	manifest, err = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + sha(layer), "size": len(layer)}},
	})
	return layer, config, manifest, err
}

func writeTar(w io.Writer, entries []file) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, ModTime: epoch, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.dir {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.body); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteOCIArchive writes an OCI image-layout tarball of the busybox image named ref (a full
// name such as "docker.io/kfp-box/busybox:test" is kept as is on import). A bare tag
// ("latest") is written only as org.opencontainers.image.ref.name, as skopeo does.
func WriteOCIArchive(w io.Writer, ref string) error { return writeOCIArchive(w, ref, "") }

func writeOCIArchive(w io.Writer, ref, user string) error {
	layer, config, manifest, err := imagePartsUser(user)
	if err != nil {
		return err
	}
	tag := ref
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	annotations := map[string]string{"org.opencontainers.image.ref.name": tag}
	if tag != ref {
		annotations["io.containerd.image.name"] = containerd.NormalizeRef(ref)
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType":   "application/vnd.oci.image.manifest.v1+json",
			"digest":      "sha256:" + sha(manifest),
			"size":        len(manifest),
			"annotations": annotations,
		}},
	})
	if err != nil {
		return err
	}
	return writeTar(w, []file{
		{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "index.json", body: index},
		{name: "blobs/", dir: true},
		{name: "blobs/sha256/", dir: true},
		{name: "blobs/sha256/" + sha(config), body: config},
		{name: "blobs/sha256/" + sha(manifest), body: manifest},
		{name: "blobs/sha256/" + sha(layer), body: layer},
	})
}

// WriteDockerArchive writes a `docker save` style tarball of the busybox image tagged ref
// (for example "busybox:docker").
func WriteDockerArchive(w io.Writer, ref string) error {
	layer, config, _, err := imageParts()
	if err != nil {
		return err
	}
	manifest, err := json.Marshal([]any{map[string]any{
		"Config":   sha(config) + ".json",
		"RepoTags": []string{ref},
		"Layers":   []string{sha(layer) + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	return writeTar(w, []file{
		{name: "manifest.json", body: manifest},
		{name: sha(config) + ".json", body: config},
		{name: sha(layer) + "/", dir: true},
		{name: sha(layer) + "/layer.tar", body: layer},
	})
}

// ImportBusybox imports the busybox image as ref into the containerd at address, in the
// kfp-box namespace, and unpacks it for overlayfs.
func ImportBusybox(ctx context.Context, address, ref string) error {
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: address})
	if err != nil {
		return err
	}
	defer c.Close()
	return ImportBusyboxClient(ctx, c, ref)
}

// ImportBusyboxClient imports the busybox image as ref through c (in c's default namespace).
func ImportBusyboxClient(ctx context.Context, c *client.Client, ref string) error {
	var buf bytes.Buffer
	if err := WriteOCIArchive(&buf, ref); err != nil {
		return err
	}
	_, err := containerd.ImportImages(ctx, c, &buf, "", "")
	return err
}

// ImportBusyboxUser imports, as ref through c, the busybox image with user ("uid[:gid]")
// as its default user, as images built with a USER instruction have.
func ImportBusyboxUser(ctx context.Context, c *client.Client, ref, user string) error {
	var buf bytes.Buffer
	if err := writeOCIArchive(&buf, ref, user); err != nil {
		return err
	}
	_, err := containerd.ImportImages(ctx, c, &buf, "", "")
	return err
}

// BuildInit builds the static kfp-box-init into dir with the go toolchain and returns its
// path. It must run from within the kfp-box module.
func BuildInit(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, containerd.InitBinaryName)
	goBin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/kfp-box/kfp-box/runtime/containerd/cmd/kfp-box-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kfp-box-init: %v: %s", err, b)
	}
	return out, nil
}

// RemoveAll kills and deletes every container in the kfp-box namespace of the containerd
// at address (test teardown).
func RemoveAll(ctx context.Context, address string) {
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: address})
	if err != nil {
		return
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, containerd.DefaultNamespace)
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return
	}
	for _, ctr := range ctrs {
		if t, err := ctr.Task(ctx, nil); err == nil {
			_, _ = t.Delete(ctx, client.WithProcessKill)
		}
		_ = ctr.Delete(ctx, client.WithSnapshotCleanup)
	}
}

// Unmount unmounts whatever is still mounted below dir, deepest first, so that removing a
// test's containerd root never deletes through a live mount.
func Unmount(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// Registry is an http.Handler serving the busybox image read-only through the OCI
// distribution API under any repository and tag (/v2/<name>/manifests/<tag>), so pull paths
// can be tested without a network. Serve it on 127.0.0.1, which containerd pulls from over
// plain HTTP.
func Registry() (http.Handler, error) {
	layer, config, manifest, err := imageParts()
	if err != nil {
		return nil, err
	}
	blobs := map[string][]byte{
		"sha256:" + sha(layer):    layer,
		"sha256:" + sha(config):   config,
		"sha256:" + sha(manifest): manifest,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == "/v2/" || p == "/v2" {
			w.WriteHeader(http.StatusOK)
			return
		}
		var body []byte
		switch {
		case strings.Contains(p, "/manifests/"):
			ref := p[strings.LastIndex(p, "/")+1:]
			if strings.HasPrefix(ref, "sha256:") && ref != "sha256:"+sha(manifest) {
				http.NotFound(w, r)
				return
			}
			body = manifest
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", "sha256:"+sha(manifest))
		case strings.Contains(p, "/blobs/"):
			b, ok := blobs[p[strings.LastIndex(p, "/")+1:]]
			if !ok {
				http.NotFound(w, r)
				return
			}
			body = b
			w.Header().Set("Content-Type", "application/octet-stream")
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}), nil
}
