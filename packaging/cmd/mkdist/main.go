// Command mkdist builds kfp-box's release files for one architecture from binaries already
// built: the Debian package kfp-box_VERSION_ARCH.deb (with nfpm, used as a library) and the
// plain tarball kfp-box_VERSION_linux_ARCH.tar.gz. `make dist` runs it once per architecture
// and writes SHA256SUMS.
//
// Usage:
//
//	go run ./cmd/mkdist --version V --arch amd64|arm64 --bin kfp-box --init kfp-box-init --out DIR
//
// It runs from the packaging directory (its own Go module, so that nfpm and its dependencies
// never enter the kfp-box binary's module graph).
package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "kfp-box version (git describe)")
	flag.StringVar(&o.arch, "arch", "", "amd64 or arm64")
	flag.StringVar(&o.bin, "bin", "", "the kfp-box binary built for --arch")
	flag.StringVar(&o.init, "init", "", "the static kfp-box-init built for --arch")
	flag.StringVar(&o.out, "out", "../dist", "output directory")
	flag.StringVar(&o.src, "src", ".", "the packaging directory (unit, config, scripts, install.sh)")
	flag.Parse()
	if flag.NArg() != 0 {
		fail(2, fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	deb, tgz, err := build(o)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fail(2, err)
		}
		fail(1, err)
	}
	fmt.Printf("%s\n%s\n", deb, tgz)
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "mkdist: %v\n", err)
	os.Exit(code)
}

type usageError struct{ error }

type options struct {
	version, arch, bin, init, out, src string
}

// releaseTag is a version from a release tag (v1.2, v1.2.3, v1.2.3-rc1 after the 'v' is
// cut); anything else, such as a commit hash made only of digits, is not one.
var releaseTag = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+([-+~].*)?$`)

// DebVersion turns a git-describe version into a Debian version, which must start with a
// digit and whose last '-' starts the revision: v1.2.3 → 1.2.3, v1.2.3-4-gabc → 1.2.3+4.gabc,
// abc1234 or 4317072 (no tag yet) → 0~git.abc1234, abc1234-dirty → 0~git.abc1234.dirty.
func DebVersion(v string) (string, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if v == "" {
		return "", usageError{errors.New("--version is empty")}
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+-~", r)) {
			return "", usageError{fmt.Errorf("--version %q: only letters, digits and .+-~ are allowed", v)}
		}
	}
	if releaseTag.MatchString(v) {
		head, rest, found := strings.Cut(v, "-")
		if !found {
			return v, nil
		}
		return head + "+" + strings.ReplaceAll(rest, "-", "."), nil
	}
	return "0~git." + strings.ReplaceAll(v, "-", "."), nil
}

// debArch is Debian's name for a Go architecture.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64"}

func build(o options) (deb, tgz string, err error) {
	arch, ok := debArch[o.arch]
	if !ok {
		return "", "", usageError{fmt.Errorf("--arch %q: want amd64 or arm64", o.arch)}
	}
	ver, err := DebVersion(o.version)
	if err != nil {
		return "", "", err
	}
	for _, p := range []string{o.bin, o.init} {
		if p == "" {
			return "", "", usageError{errors.New("--bin and --init are required")}
		}
		if _, err := os.Stat(p); err != nil {
			return "", "", err
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", "", err
	}
	mtime := sourceDate()
	deb = filepath.Join(o.out, fmt.Sprintf("kfp-box_%s_%s.deb", ver, arch))
	if err := buildDeb(o, ver, arch, mtime, deb); err != nil {
		return "", "", fmt.Errorf("%s: %w", deb, err)
	}
	tgz = filepath.Join(o.out, fmt.Sprintf("kfp-box_%s_linux_%s.tar.gz", ver, arch))
	if err := buildTarball(o, ver, arch, mtime, tgz); err != nil {
		return "", "", fmt.Errorf("%s: %w", tgz, err)
	}
	return deb, tgz, nil
}

// sourceDate is $SOURCE_DATE_EPOCH (reproducible builds) or now.
func sourceDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

func buildDeb(o options, ver, arch string, mtime time.Time, target string) error {
	src := func(name string) string { return filepath.Join(o.src, name) }
	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode, MTime: mtime}}
	}
	conf := file(src("config.yaml"), "/etc/kfp-box/config.yaml", 0o644)
	conf.Type = files.TypeConfigNoReplace
	info := &nfpm.Info{
		Name:          "kfp-box",
		Arch:          arch,
		Platform:      "linux",
		Version:       ver,
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "kfp-box maintainers <kfp-box@users.noreply.github.com>",
		Homepage:      "https://github.com/kfp-box/kfp-box",
		License:       "Apache-2.0",
		Description: "Kubeflow Pipelines on one machine, with no cluster\n" +
			"One binary gives a machine the KFP v2 API (the kfp SDK works), a DAG engine,\n" +
			"embedded S3 artifact storage, containerd and host task runtimes and a web UI.\n" +
			"This package runs it as the systemd service kfp-box.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			// The box runs without them (host runtime, plain tasks); they add container images.
			Recommends: []string{"containerd", "runc"},
			Suggests:   []string{"python3-venv"},
			Contents: files.Contents{
				file(o.bin, "/usr/bin/kfp-box", 0o755),
				// Looked up next to the kfp-box executable by the containerd runtime.
				file(o.init, "/usr/bin/kfp-box-init", 0o755),
				file(src("kfp-box.service"), "/lib/systemd/system/kfp-box.service", 0o644),
				conf,
				file(src("README.md"), "/usr/share/doc/kfp-box/README.md", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: src("scripts/postinst"),
				PreRemove:   src("scripts/prerm"),
				PostRemove:  src("scripts/postrm"),
			},
			Deb: nfpm.Deb{Compression: "zstd"}, // fast to build and to unpack; dpkg reads it since Debian 12
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	f, err := os.Create(target + ".tmp")
	if err != nil {
		return err
	}
	info.Target = target
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), target)
}

// buildTarball writes kfp-box_VERSION_linux_ARCH/ with the binaries, the unit, the default
// config and install.sh, which installs it as the .deb would.
func buildTarball(o options, ver, arch string, mtime time.Time, target string) error {
	top := fmt.Sprintf("kfp-box_%s_linux_%s", ver, arch)
	members := []struct {
		from, name string
		mode       int64
	}{
		{o.bin, "kfp-box", 0o755},
		{o.init, "kfp-box-init", 0o755},
		{filepath.Join(o.src, "kfp-box.service"), "kfp-box.service", 0o644},
		{filepath.Join(o.src, "config.yaml"), "config.yaml", 0o644},
		{filepath.Join(o.src, "install.sh"), "install.sh", 0o755},
		{filepath.Join(o.src, "README.md"), "README.md", 0o644},
	}
	f, err := os.Create(target + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Size: size, Typeflag: typ, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(top+"/", 0o755, 0, tar.TypeDir)); err != nil {
		return err
	}
	for _, m := range members {
		in, err := os.Open(m.from)
		if err != nil {
			return err
		}
		st, err := in.Stat()
		if err == nil {
			err = tw.WriteHeader(hdr(top+"/"+m.name, m.mode, st.Size(), tar.TypeReg))
		}
		if err == nil {
			_, err = io.Copy(tw, in)
		}
		in.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", m.from, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), target)
}
