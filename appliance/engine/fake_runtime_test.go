package engine

import (
	"context"
	"sync"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// fakeRuntime is a hand-written Runtime whose tasks do what RunFn says (default: exit 0 at
// once). It keeps started tasks so Lookup finds them.
type fakeRuntime struct {
	// RunFn decides a task's exit; nil means exit 0.
	RunFn func(ctx context.Context, spec runtime.TaskSpec) runtime.ExitStatus
	// StartFn, when set, may refuse to start a task.
	StartFn func(spec runtime.TaskSpec) error

	mu    sync.Mutex
	tasks map[string]*fakeTask
}

type fakeTask struct {
	spec runtime.TaskSpec
	done chan struct{}
	st   runtime.ExitStatus
}

func (f *fakeRuntime) Name() string { return "fake" }

func (f *fakeRuntime) Start(ctx context.Context, spec runtime.TaskSpec) (runtime.Task, error) {
	if f.StartFn != nil {
		if err := f.StartFn(spec); err != nil {
			return nil, err
		}
	}
	t := &fakeTask{spec: spec, done: make(chan struct{})}
	f.mu.Lock()
	if f.tasks == nil {
		f.tasks = map[string]*fakeTask{}
	}
	if _, dup := f.tasks[spec.ID]; dup {
		f.mu.Unlock()
		return nil, runtime.ErrAlreadyExists
	}
	f.tasks[spec.ID] = t
	f.mu.Unlock()
	go func() {
		st := runtime.ExitStatus{StartedAt: time.Now()}
		if f.RunFn != nil {
			st = f.RunFn(context.Background(), spec)
		}
		st.ExitedAt = time.Now()
		t.st = st
		close(t.done)
	}()
	return t, nil
}

func (f *fakeRuntime) Lookup(_ context.Context, id string) (runtime.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tasks[id]; t != nil {
		return t, nil
	}
	return nil, runtime.ErrNotFound
}

func (f *fakeRuntime) List(context.Context) ([]runtime.Task, error) { return nil, nil }
func (f *fakeRuntime) Close() error                                 { return nil }

func (t *fakeTask) ID() string                { return t.spec.ID }
func (t *fakeTask) Labels() map[string]string { return t.spec.Labels }
func (t *fakeTask) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	select {
	case <-t.done:
		return t.st, nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
}
func (t *fakeTask) Kill(context.Context, time.Duration) error { return nil }
func (t *fakeTask) Delete(context.Context) error              { return nil }

var _ runtime.Runtime = (*fakeRuntime)(nil)
