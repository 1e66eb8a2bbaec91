package engine

import (
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// TestFingerprintVolumes checks the volume names in the cache key: their order and
// repeats do not matter, their names do, and none is the same as an empty list.
func TestFingerprintVolumes(t *testing.T) {
	task := &spec.PipelineTaskSpec{ComponentRef: spec.ComponentRef{Name: "comp-a"}}
	comp := &spec.ComponentSpec{}
	ctr := &spec.ContainerSpec{Image: "busybox", Command: []string{"true"}}
	in := meta.IO{Parameters: map[string]any{"x": "1"}}
	fp := func(vols ...string) string { return fingerprint(task, comp, ctr, in, vols) }

	if fp() != fingerprint(task, comp, ctr, in, []string{}) {
		t.Error("nil and empty volume lists give different fingerprints")
	}
	if fp("a", "b") != fp("b", "a", "a") {
		t.Error("the order or repetition of volume names changes the fingerprint")
	}
	for _, pair := range [][2][]string{{{"a"}, {"b"}}, {nil, {"a"}}, {{"a"}, {"a", "b"}}} {
		if fp(pair[0]...) == fp(pair[1]...) {
			t.Errorf("volumes %q and %q give the same fingerprint", pair[0], pair[1])
		}
	}
	keyed := *task
	keyed.CachingOptions = &spec.CachingOptions{EnableCache: true, CacheKey: "k"}
	if fingerprint(&keyed, comp, ctr, in, []string{"a"}) != fingerprint(&keyed, comp, ctr, in, []string{"b"}) {
		t.Error("a custom cache key must ignore everything else, volumes included")
	}
}
