package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// StalenessAnnotation is the pod annotation (kfp-kubernetes add_pod_annotation) that
// bounds the age of cache entries a task may reuse, as KFP v1 did: an ISO 8601 duration
// ("P30D", "PT1H") or a Go duration ("90m"); zero disables reuse.
const StalenessAnnotation = "pipelines.kubeflow.org/max_cache_staleness"

// fingerprint is the cache key of a container task (kfp-compat §5): SHA-256 of the
// canonical JSON of input artifact ids, resolved input parameters, output specs, the
// unresolved command and the names of the volumes it mounts (sorted, without
// duplicates); or of component name + NUL + the custom cacheKey.
func fingerprint(t *spec.PipelineTaskSpec, comp *spec.ComponentSpec, ctr *spec.ContainerSpec, in meta.IO, pvcNames []string) string {
	if t.CachingOptions != nil && t.CachingOptions.CacheKey != "" {
		sum := sha256.Sum256([]byte(t.ComponentRef.Name + "\x00" + t.CachingOptions.CacheKey))
		return hex.EncodeToString(sum[:])
	}
	arts := map[string]any{}
	for name, refs := range in.Artifacts {
		ids := make([]string, len(refs))
		for i, r := range refs {
			ids[i] = r.ID
		}
		arts[name] = map[string]any{"artifactNames": ids}
	}
	outArts := map[string]any{}
	outParams := map[string]any{}
	if d := comp.OutputDefinitions; d != nil {
		for name, a := range d.Artifacts {
			outArts[name] = map[string]any{"name": name, "type": a.ArtifactType, "metadata": a.Metadata}
		}
		for name, p := range d.Parameters {
			outParams[name] = p.ParameterType
		}
	}
	cmd := append(append([]string{}, ctr.Command...), ctr.Args...)
	ctrKey := map[string]any{"image": ctr.Image, "cmdArgs": cmd}
	if len(pvcNames) > 0 { // an empty list is left out, as protojson leaves it out
		ctrKey["pvcNames"] = sortedUnique(pvcNames)
	}
	key := map[string]any{
		"inputArtifactNames":   arts,
		"inputParameterValues": in.Parameters,
		"outputArtifactsSpec":  outArts,
		"outputParametersSpec": outParams,
		"containerSpec":        ctrKey,
	}
	b, _ := json.Marshal(key) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sortedUnique returns the strings of in sorted, each once.
func sortedUnique(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return slices.Compact(out)
}

// cacheHit looks for a reusable execution; on a hit it returns c as CACHED with the
// source's outputs and where they came from.
func (e *Engine) cacheHit(ctx context.Context, rs *runState, c *meta.Execution, fp string, k8s *spec.KubernetesExecutorConfig, now time.Time) (*meta.Execution, bool) {
	staleness := e.cfg.MaxCacheStaleness
	if k8s != nil && k8s.PodMetadata != nil {
		if s, ok := k8s.PodMetadata.Annotations[StalenessAnnotation]; ok {
			d, err := parseStaleness(s)
			if err != nil {
				e.log.Warn("ignoring invalid max_cache_staleness", "value", s, "err", err)
			} else if d == 0 {
				return nil, false
			} else {
				staleness = d
			}
		}
	}
	var notBefore time.Time
	if staleness > 0 {
		notBefore = now.Add(-staleness)
	}
	var src *meta.Execution
	ent := rs.pendingCache[rs.info.PipelineName+"\x00"+fp]
	if ent != nil {
		// A task of this run that succeeded in this very step (not committed yet).
		src = rs.execs[ent.ExecutionID]
	} else {
		var err error
		if ent, err = e.cfg.Meta.LookupCache(ctx, rs.info.PipelineName, fp, notBefore); err != nil {
			return nil, false
		}
		if ent.RunID == rs.id && rs.execs[ent.ExecutionID] != nil {
			src = rs.execs[ent.ExecutionID]
		} else if src, err = e.cfg.Meta.GetExecution(ctx, ent.RunID, ent.ExecutionID); err != nil {
			return nil, false
		}
	}
	if src == nil || !succeeded(src.State) {
		return nil, false
	}
	hit := cloneExec(c)
	hit.Outputs = src.Outputs
	hit.CacheSource = &meta.CacheSource{RunID: ent.RunID, ExecutionID: ent.ExecutionID, TaskName: ent.TaskName, Fingerprint: fp}
	if src.CacheSource != nil {
		hit.CacheSource.RunID, hit.CacheSource.ExecutionID, hit.CacheSource.TaskName = src.CacheSource.RunID, src.CacheSource.ExecutionID, src.CacheSource.TaskName
	}
	setExecState(hit, meta.ExecCached, "", now)
	return hit, true
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseStaleness parses an ISO 8601 duration or a Go duration.
func parseStaleness(s string) (time.Duration, error) {
	if g := isoDuration.FindStringSubmatch(s); g != nil && s != "P" && s != "PT" {
		units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
		var d time.Duration
		for i, u := range units {
			if g[i+1] != "" {
				n, _ := strconv.Atoi(g[i+1])
				d += time.Duration(n) * u
			}
		}
		if g[7] != "" {
			f, _ := strconv.ParseFloat(g[7], 64)
			d += time.Duration(f * float64(time.Second))
		}
		return d, nil
	}
	return time.ParseDuration(s)
}

var _ = sort.Strings
