package engine

import (
	"context"
	"strings"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
)

// pipEnv adds PIP_INDEX_URL and PIP_TRUSTED_HOST for the box's package index to a task's
// environment, unless the component names its own index (pip_index_urls, honoured as
// written) or sets PIP_INDEX_URL itself.
func (e *Engine) pipEnv(env []string, runID string, argv []string, ctr *spec.ContainerSpec) []string {
	if e.cfg.PackageIndex == nil {
		return env
	}
	for _, v := range ctr.Env {
		if v.Name == "PIP_INDEX_URL" {
			return env
		}
	}
	if pyenv.ParseCommand(argv).OwnIndex() {
		return env
	}
	idx := e.cfg.PackageIndex(runID)
	if idx == "" {
		return env
	}
	return append(env, "PIP_INDEX_URL="+idx, "PIP_TRUSTED_HOST="+pyenv.HostOf(idx))
}

// preparePython gives a task its Python environment before it starts: variables replace
// those of the same name, mounts are added.
func (e *Engine) preparePython(ctx context.Context, rs *runState, s *startReq) error {
	path := ""
	for _, kv := range s.spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	wait := func(why string) {
		e.post(rs.id, taskEvent{execID: s.x.ID, attempt: s.x.Attempt, kind: evWaiting, waiting: why})
	}
	env, mounts, err := e.cfg.Python.Prepare(ctx, s.spec.Args, s.pythonDir, path, wait)
	if err != nil {
		return err
	}
	s.spec.Env = setEnv(s.spec.Env, env)
	s.spec.Mounts = append(s.spec.Mounts, mounts...)
	// The task's own venv is the task's, as confine made the rest of its files: pip writes
	// its installs and cache there as the task's user.
	if u := s.spec.User; u != nil && *u != 0 {
		gid := 0
		if s.spec.Group != nil {
			gid = int(*s.spec.Group)
		}
		if err := chownTree(s.pythonDir, int(*u), gid); err != nil {
			return err
		}
	}
	return nil
}

// setEnv sets KEY=VALUE pairs in env, replacing earlier values of the same keys.
func setEnv(env, set []string) []string {
	keys := map[string]bool{}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}
