package meta

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// fieldKind is the type of a listable field.
type fieldKind int

const (
	kindString fieldKind = iota + 1
	// kindTime fields hold unix nanoseconds (0 = unset); filters compare them in seconds, as
	// KFP's SQL store does.
	kindTime
	kindInt
)

// row holds the listable fields of one record. Rows are immutable once published: a write
// replaces the row, so readers holding the lock briefly never see a half-updated row.
type row struct {
	id      string
	rev     int64
	deleted bool
	// str and num hold the field values at the positions of the index's field table; a row
	// fresh from a builder holds maps (strM, numM) until index.layout converts it.
	str []string
	num []int64
	// tags are the record's tags (pipelines and versions), matched by "tags.<key>" filters.
	tags map[string]string
	strM map[string]string
	numM map[string]int64
}

// fieldRef locates a field in a row.
type fieldRef struct {
	kind fieldKind
	pos  int
}

func (r *row) get(f fieldRef) (string, int64) {
	if f.kind == kindString {
		return r.str[f.pos], 0
	}
	return "", r.num[f.pos]
}

// index is the in-memory table of one listable kind.
type index struct {
	kind    string
	fields  map[string]fieldRef
	aliases map[string]string
	// tagged indexes allow "tags.<key>" filter predicates.
	tagged bool
	nStr   int
	nNum   int

	mu   sync.RWMutex
	rows map[string]*row
}

func newIndex(kind string, fields map[string]fieldKind, aliases map[string]string) *index {
	ix := &index{kind: kind, fields: map[string]fieldRef{}, aliases: aliases, rows: map[string]*row{}}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := fields[n]
		if k == kindString {
			ix.fields[n] = fieldRef{kind: k, pos: ix.nStr}
			ix.nStr++
		} else {
			ix.fields[n] = fieldRef{kind: k, pos: ix.nNum}
			ix.nNum++
		}
	}
	return ix
}

// layout converts a builder's row to the index's positional form.
func (ix *index) layout(r *row) *row {
	if r.strM == nil && r.numM == nil {
		return r
	}
	r.str, r.num = make([]string, ix.nStr), make([]int64, ix.nNum)
	for n, f := range ix.fields {
		if f.kind == kindString {
			r.str[f.pos] = r.strM[n]
		} else {
			r.num[f.pos] = r.numM[n]
		}
	}
	r.strM, r.numM = nil, nil
	return r
}

// str returns a row's string field by name.
func (ix *index) str(r *row, name string) string {
	f, ok := ix.fields[name]
	if !ok || f.kind != kindString {
		return ""
	}
	return r.str[f.pos]
}

// num returns a row's numeric field by name.
func (ix *index) num(r *row, name string) int64 {
	f, ok := ix.fields[name]
	if !ok || f.kind == kindString {
		return 0
	}
	return r.num[f.pos]
}

// apply publishes r unless a newer revision of the same id is already there, so that two
// committed writes applied out of order leave the newest.
func (ix *index) apply(r *row) {
	r = ix.layout(r)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.rows[r.id]; ok && old.rev > r.rev {
		return
	}
	ix.rows[r.id] = r
}

// get returns the live row of id.
func (ix *index) get(id string) (*row, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.rows[id]
	if !ok || r.deleted {
		return nil, false
	}
	return r, true
}

// each calls fn for every live row under the read lock; fn must not write to the index.
func (ix *index) each(fn func(*row) bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, r := range ix.rows {
		if r.deleted {
			continue
		}
		if !fn(r) {
			return
		}
	}
}

// resolve maps an API key (with aliases) to a field name and location.
func (ix *index) resolve(key string) (string, fieldRef, bool) {
	if a, ok := ix.aliases[key]; ok {
		key = a
	}
	f, ok := ix.fields[key]
	return key, f, ok
}

// indexes are the in-memory rows used for listing.
type indexes struct {
	runs        *index
	experiments *index
	pipelines   *index
	versions    *index
	recurring   *index
}

func newIndexes() indexes {
	return indexes{
		runs: newIndex("run", map[string]fieldKind{
			"run_id": kindString, "display_name": kindString, "description": kindString,
			"namespace": kindString, "experiment_id": kindString, "storage_state": kindString,
			"state": kindString, "recurring_run_id": kindString, "pipeline_id": kindString,
			"pipeline_version_id": kindString, "pipeline_name": kindString,
			"created_at": kindTime, "finished_at": kindTime, "scheduled_at": kindTime,
		}, map[string]string{"id": "run_id", "name": "display_name", "status": "state"}),
		experiments: newIndex("experiment", map[string]fieldKind{
			"experiment_id": kindString, "display_name": kindString, "description": kindString,
			"namespace": kindString, "storage_state": kindString,
			"created_at": kindTime, "last_run_created_at": kindTime,
		}, map[string]string{"id": "experiment_id", "name": "display_name"}),
		pipelines: tagged(newIndex("pipeline", map[string]fieldKind{
			"pipeline_id": kindString, "name": kindString, "display_name": kindString,
			"description": kindString, "namespace": kindString, "created_at": kindTime,
		}, map[string]string{"id": "pipeline_id"})),
		versions: tagged(newIndex("pipeline version", map[string]fieldKind{
			"pipeline_version_id": kindString, "pipeline_id": kindString, "name": kindString,
			"display_name": kindString, "description": kindString, "created_at": kindTime,
		}, map[string]string{"id": "pipeline_version_id"})),
		recurring: newIndex("recurring run", map[string]fieldKind{
			"recurring_run_id": kindString, "display_name": kindString, "description": kindString,
			"namespace": kindString, "experiment_id": kindString, "status": kindString,
			"pipeline_id": kindString, "pipeline_version_id": kindString,
			"created_at": kindTime, "updated_at": kindTime,
		}, map[string]string{"id": "recurring_run_id", "name": "display_name"}),
	}
}

func tagged(ix *index) *index {
	ix.tagged = true
	return ix
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func runRow(r *Run) *row {
	return &row{id: r.ID, strM: map[string]string{
		"run_id": r.ID, "display_name": r.DisplayName, "description": r.Description,
		"namespace": r.Namespace, "experiment_id": r.ExperimentID, "storage_state": r.StorageState,
		"state": r.State, "recurring_run_id": r.RecurringRunID, "pipeline_id": r.PipelineID,
		"pipeline_version_id": r.PipelineVersionID, "pipeline_name": r.PipelineName,
	}, numM: map[string]int64{
		"created_at": nanos(r.CreatedAt), "finished_at": nanos(r.FinishedAt), "scheduled_at": nanos(r.ScheduledAt),
	}}
}

func experimentRow(e *Experiment) *row {
	return &row{id: e.ID, strM: map[string]string{
		"experiment_id": e.ID, "display_name": e.DisplayName, "description": e.Description,
		"namespace": e.Namespace, "storage_state": e.StorageState,
	}, numM: map[string]int64{"created_at": nanos(e.CreatedAt), "last_run_created_at": nanos(e.LastRunCreatedAt)}}
}

func pipelineRow(p *Pipeline) *row {
	return &row{id: p.ID, tags: p.Tags, strM: map[string]string{
		"pipeline_id": p.ID, "name": p.Name, "display_name": p.DisplayName,
		"description": p.Description, "namespace": p.Namespace,
	}, numM: map[string]int64{"created_at": nanos(p.CreatedAt)}}
}

func versionRow(v *PipelineVersion) *row {
	return &row{id: v.ID, tags: v.Tags, strM: map[string]string{
		"pipeline_version_id": v.ID, "pipeline_id": v.PipelineID, "name": v.Name,
		"display_name": v.DisplayName, "description": v.Description,
	}, numM: map[string]int64{"created_at": nanos(v.CreatedAt)}}
}

func recurringRow(r *RecurringRun) *row {
	status := "DISABLED"
	if r.Enabled {
		status = "ENABLED"
	}
	return &row{id: r.ID, strM: map[string]string{
		"recurring_run_id": r.ID, "display_name": r.DisplayName, "description": r.Description,
		"namespace": r.Namespace, "experiment_id": r.ExperimentID, "status": status,
		"pipeline_id": r.PipelineID, "pipeline_version_id": r.PipelineVersionID,
	}, numM: map[string]int64{"created_at": nanos(r.CreatedAt), "updated_at": nanos(r.UpdatedAt)}}
}

// loadIndexes builds every index from the stored records.
func (s *Store) loadIndexes(ctx context.Context) error {
	s.idx = newIndexes()
	return s.kv.View(ctx, func(tx kv.Tx) error {
		load := func(prefix string, ix *index, mk func([]byte) (*row, error)) error {
			return tx.Scan([]byte(prefix), nil, false, func(_, v []byte, rev int64) error {
				r, err := mk(v)
				if err != nil {
					return err
				}
				r.rev = rev // the record's modification revision
				ix.rows[r.id] = ix.layout(r)
				return nil
			})
		}
		if err := load(runPrefix, s.idx.runs, decodeRow(runRow)); err != nil {
			return err
		}
		if err := load(experimentPrefix, s.idx.experiments, decodeRow(experimentRow)); err != nil {
			return err
		}
		if err := load(pipelinePrefix, s.idx.pipelines, decodeRow(pipelineRow)); err != nil {
			return err
		}
		if err := load(versionPrefix, s.idx.versions, decodeRow(versionRow)); err != nil {
			return err
		}
		return load(recurringPrefix, s.idx.recurring, decodeRow(recurringRow))
	})
}

// decodeRow adapts a row builder to raw JSON values.
func decodeRow[T any](mk func(*T) *row) func([]byte) (*row, error) {
	return func(b []byte) (*row, error) {
		t := new(T)
		if err := json.Unmarshal(b, t); err != nil {
			return nil, err
		}
		return mk(t), nil
	}
}

// writeSet collects the index changes of one write transaction; they are published only
// after the transaction commits, stamped with the revision the store returned for it.
type writeSet struct {
	ops []indexOp
}

type indexOp struct {
	ix *index
	r  *row
}

func (w *writeSet) put(ix *index, r *row) { w.ops = append(w.ops, indexOp{ix: ix, r: r}) }

func (w *writeSet) del(ix *index, id string) {
	w.ops = append(w.ops, indexOp{ix: ix, r: &row{id: id, deleted: true}})
}

// write runs fn in a durable write transaction (a coalescable Batch when batch is true: fn
// must then be idempotent) and publishes its index changes after the commit.
func (s *Store) write(ctx context.Context, batch bool, fn func(tx kv.Tx, w *writeSet) error) error {
	var w writeSet
	body := func(tx kv.Tx) error {
		w = writeSet{} // fn may be retried: keep only the last run's changes
		return fn(tx, &w)
	}
	var rev int64
	var err error
	if batch {
		rev, err = s.kv.Batch(ctx, body)
	} else {
		rev, err = s.kv.Update(ctx, body)
	}
	if err != nil {
		return err
	}
	for _, op := range w.ops {
		op.r.rev = rev
		op.ix.apply(op.r)
	}
	return nil
}
