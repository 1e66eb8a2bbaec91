package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// fakeVolumes is Volumes over directories under dir, for the engine's tests: claims are
// names in a map (the box's implementation, with its one name check, is appliance/k8s).
type fakeVolumes struct {
	dir string

	mu          sync.Mutex
	claims      map[string]string // name -> run that made it ("" for claims made by the test)
	terminating map[string]bool
	holders     map[string]map[string]bool
	byHolder    map[string][]string
	created     []VolumeClaim
}

func newFakeVolumes(dir string, names ...string) *fakeVolumes {
	v := &fakeVolumes{dir: dir, claims: map[string]string{}, terminating: map[string]bool{},
		holders: map[string]map[string]bool{}, byHolder: map[string][]string{}}
	for _, n := range names {
		v.claims[n] = ""
		_ = os.MkdirAll(filepath.Join(dir, n), 0o755)
	}
	return v
}

func fakeName(name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("claim name %q is not valid", name)
	}
	return nil
}

func (v *fakeVolumes) ResolveVolume(_ context.Context, name string) (string, error) {
	if err := fakeName(name); err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.claims[name]; !ok {
		return "", fmt.Errorf("persistentvolumeclaim %q not found", name)
	}
	if v.terminating[name] {
		return "", fmt.Errorf("persistentvolumeclaim %q is being deleted", name)
	}
	return filepath.Join(v.dir, name), nil
}

func (v *fakeVolumes) AcquireVolumes(_ context.Context, holder string, names []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range names {
		if _, ok := v.claims[n]; !ok || v.terminating[n] {
			return fmt.Errorf("persistentvolumeclaim %q is gone or being deleted", n)
		}
	}
	for _, n := range names {
		if v.holders[n] == nil {
			v.holders[n] = map[string]bool{}
		}
		v.holders[n][holder] = true
		v.byHolder[holder] = append(v.byHolder[holder], n)
	}
	return nil
}

func (v *fakeVolumes) ReleaseVolumes(holder string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range v.byHolder[holder] {
		delete(v.holders[n], holder)
		if len(v.holders[n]) == 0 && v.terminating[n] {
			v.remove(n)
		}
	}
	delete(v.byHolder, holder)
}

func (v *fakeVolumes) remove(n string) {
	delete(v.claims, n)
	delete(v.terminating, n)
	_ = os.RemoveAll(filepath.Join(v.dir, n))
}

func (v *fakeVolumes) CreateVolume(_ context.Context, c VolumeClaim) error {
	if err := fakeName(c.Name); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if run, ok := v.claims[c.Name]; ok {
		if run == c.Run && run != "" {
			return nil
		}
		return errors.New("already exists")
	}
	v.claims[c.Name] = c.Run
	v.created = append(v.created, c)
	return os.MkdirAll(filepath.Join(v.dir, c.Name), 0o755)
}

func (v *fakeVolumes) DeleteVolume(_ context.Context, name string) error {
	if err := fakeName(name); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.claims[name]; !ok {
		return nil
	}
	if len(v.holders[name]) > 0 {
		v.terminating[name] = true
		return nil
	}
	v.remove(name)
	return nil
}

// exists says whether claim name exists (and is not being deleted).
func (v *fakeVolumes) exists(name string) (exists, terminating bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.claims[name]
	return ok, v.terminating[name]
}
