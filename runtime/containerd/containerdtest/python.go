package containerdtest

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/kfp-box/kfp-box/runtime/containerd"
)

// PythonImageRef is the test-only name of the Python image the containerd tests run
// lightweight Python components in: Debian bookworm with python3, pip and venv, built once
// by scripts/python-test-image.sh. Tests import it under this name and under the names
// KFP's fixtures use (python:3.11, ...), which then resolve to it. It is never pulled.
const PythonImageRef = "kfp-box.test/python:3-bookworm"

// PythonRootfs is the cached root filesystem tarball of the test Python image, or a reason
// why it is missing.
func PythonRootfs() (string, string) {
	cache := os.Getenv("KFPBOX_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/kfp-box-test"
	}
	p := filepath.Join(cache, "python-bookworm-rootfs.tar")
	if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
		return "", fmt.Sprintf("the test Python image is not built (%s missing): run scripts/python-test-image.sh as root", p)
	}
	return p, ""
}

// ImportPythonImage imports the test Python image from its rootfs tarball under refs (a
// docker-archive streamed from the file: one layer, PATH set, python3 as command).
func ImportPythonImage(ctx context.Context, c *client.Client, rootfs string, refs ...string) error {
	f, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	layerSHA := hex.EncodeToString(h.Sum(nil))
	config, err := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"},
			"Cmd":        []string{"python3"},
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerSHA}},
	})
	if err != nil {
		return err
	}
	tags := make([]string, 0, len(refs))
	for _, r := range refs {
		tags = append(tags, containerd.NormalizeRef(r))
	}
	manifest, err := json.Marshal([]any{map[string]any{
		"Config": sha(config) + ".json", "RepoTags": tags, "Layers": []string{layerSHA + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		epoch := time.Unix(0, 0)
		write := func(name string, body []byte) error {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err := tw.Write(body)
			return err
		}
		err := write("manifest.json", manifest)
		if err == nil {
			err = write(sha(config)+".json", config)
		}
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: layerSHA + "/layer.tar", Mode: 0o644, ModTime: epoch, Size: fi.Size(), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err = containerd.ImportImages(ctx, c, pr, "", "")
	_ = pr.CloseWithError(err)
	return err
}
