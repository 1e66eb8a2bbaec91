package containerd

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// Settings is the containerd backend's configuration section (runtime.containerd in the
// configuration file). Its tags are the documentation `kfp-box config schema` prints.
type Settings struct {
	Address     string        `json:"address" legacy:"containerd_address" doc:"containerd socket (an absolute path); empty: the system socket /run/containerd/containerd.sock when it answers, else a child containerd kfp-box starts under DATA_DIR/containerd (needs root)"`
	Namespace   string        `json:"namespace" doc:"containerd namespace that holds kfp-box's images and task containers"`
	Snapshotter string        `json:"snapshotter" doc:"containerd snapshotter images are unpacked with (overlayfs, native, ...)"`
	InitBinary  string        `json:"init_binary" doc:"static init run as each task's PID 1; empty: kfp-box-init next to the kfp-box binary or in PATH; \"none\": tasks run without one"`
	LogBinary   string        `json:"log_binary" doc:"executable the containerd shim runs as each task's log writer; empty: the init binary, else kfp-box itself"`
	PullTimeout time.Duration `json:"pull_timeout" doc:"how long an implicit pull of a task's missing image may take"`
}

// NewSettings returns the section with its defaults.
func NewSettings() *Settings {
	return &Settings{Namespace: DefaultNamespace, Snapshotter: "overlayfs", PullTimeout: 10 * time.Minute}
}

// namespaceRE is containerd's rule for namespace names.
var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

// Validate checks the section's values.
func (s *Settings) Validate() error {
	if s.Address != "" && !filepath.IsAbs(strings.TrimPrefix(s.Address, "unix://")) {
		return fmt.Errorf("address %q: want the absolute path of a socket", s.Address)
	}
	if !namespaceRE.MatchString(s.Namespace) || len(s.Namespace) > 76 {
		return fmt.Errorf("namespace %q: want letters and digits, joined by '.', '_' or '-'", s.Namespace)
	}
	if s.Snapshotter == "" {
		return fmt.Errorf("snapshotter is empty")
	}
	if s.PullTimeout <= 0 {
		return fmt.Errorf("pull_timeout %s: want a positive duration", s.PullTimeout)
	}
	return nil
}

func init() {
	runtime.Register(ID, NewSettings, func(ctx context.Context, opts runtime.Options, s *Settings) (runtime.Runtime, error) {
		return New(ctx, Config{
			Address:      s.Address,
			DataDir:      opts.DataDir,
			Namespace:    s.Namespace,
			Snapshotter:  s.Snapshotter,
			LoggerBinary: s.LogBinary,
			InitBinary:   s.InitBinary,
			PullTimeout:  s.PullTimeout,
			Logger:       opts.Logger,
		})
	})
}
