package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/mysqltest"
	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/kine"
)

// benchStore holds 10,000 runs over 20 experiments, written in batches.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s := openTest(b)
	fillBench(b, s)
	return s
}

// benchStorePostgres is benchStore with the kv store on PostgreSQL through kine, in a
// cluster started for the benchmark (internal/pgtest).
func benchStorePostgres(b *testing.B) *Store {
	b.Helper()
	return benchStoreKine(b, pgtest.Require(b).DSN("bench"))
}

// benchStoreMySQL is benchStore on MariaDB through kine (internal/mysqltest).
func benchStoreMySQL(b *testing.B) *Store {
	b.Helper()
	return benchStoreKine(b, mysqltest.Require(b).DSN("bench"))
}

func benchStoreKine(b *testing.B, endpoint string) *Store {
	b.Helper()
	s := openKine(b, endpoint)
	fillBench(b, s)
	return s
}

// openKine opens a meta store on kine at endpoint, closed when the benchmark ends.
func openKine(b *testing.B, endpoint string) *Store {
	b.Helper()
	ctx := context.Background()
	kvs, err := kine.Open(ctx, kine.Options{Endpoint: endpoint})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = kvs.Close() })
	s, err := Open(ctx, kvs, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func fillBench(b *testing.B, s *Store) {
	b.Helper()
	ctx := context.Background()
	const n = 10000
	for start := 0; start < n; start += 500 {
		err := s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
			for i := start; i < start+500; i++ {
				r := mkRun(i, fmt.Sprintf("exp-%02d", i%20))
				r.CreatedAt = t0.Add(time.Duration(i) * time.Second)
				r.RuntimeConfig.Parameters = map[string]any{"lr": 0.01, "epochs": float64(i % 7), "name": "some string value"}
				r.StateHistory = []StateEvent{{UpdateTime: r.CreatedAt, State: RunPending}, {UpdateTime: r.CreatedAt, State: r.State}}
				if err := s.putRun(tx, w, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListRunsFilteredPage lists a filtered, sorted page of 200 out of 10,000 runs
// through the in-memory index (the API's GET /runs path minus HTTP).
func BenchmarkListRunsFilteredPage(b *testing.B) { benchFilteredPage(b, benchStore(b)) }

// BenchmarkListRunsFilteredPagePostgres is the same page with the records on PostgreSQL.
func BenchmarkListRunsFilteredPagePostgres(b *testing.B) {
	benchFilteredPage(b, benchStorePostgres(b))
}

// BenchmarkListRunsFilteredPageMySQL is the same page with the records on MariaDB.
func BenchmarkListRunsFilteredPageMySQL(b *testing.B) {
	benchFilteredPage(b, benchStoreMySQL(b))
}

func benchFilteredPage(b *testing.B, s *Store) {
	ctx := context.Background()
	opts := ListOptions{
		PageSize: 200,
		SortBy:   "created_at desc",
		Filter:   `{"predicates":[{"operation":2,"key":"state","stringValue":"FAILED"},{"operation":2,"key":"storage_state","stringValue":"ARCHIVED"}]}`,
	}
	b.ResetTimer()
	for b.Loop() {
		p, err := s.ListRuns(ctx, "", opts)
		if err != nil || len(p.Items) != 200 || p.TotalSize != 6666 {
			b.Fatalf("page %d of %d: %v", len(p.Items), p.TotalSize, err)
		}
	}
}

// BenchmarkRawBoltScan10000 is the baseline: decode every run straight from bbolt, filter,
// sort and cut a page, as a store without an index would.
func BenchmarkRawBoltScan10000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		var keep []*Run
		err := s.kv.View(ctx, func(tx kv.Tx) error {
			return tx.Scan([]byte(runPrefix), nil, false, func(_, v []byte, _ int64) error {
				var r Run
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				if r.State != RunFailed && r.StorageState != StorageArchived {
					keep = append(keep, &r)
				}
				return nil
			})
		})
		if err != nil || len(keep) != 6666 {
			b.Fatalf("kept %d: %v", len(keep), err)
		}
	}
}

// BenchmarkCreateRun stores one run with its spec (no experiment) per op: one commit of two
// keys, on bbolt without fsync.
func BenchmarkCreateRun(b *testing.B) { benchCreateRun(b, openTest(b)) }

// BenchmarkCreateRunPostgres is the same commit on PostgreSQL through kine (the test
// cluster runs without fsync too): an intent record, two compare-and-swap writes, and the
// intent's removal.
func BenchmarkCreateRunPostgres(b *testing.B) {
	benchCreateRunKine(b, pgtest.Require(b).DSN("bench_create"))
}

// BenchmarkCreateRunMySQL is the same commit on MariaDB through kine (the test server
// flushes its log once a second, not at each commit).
func BenchmarkCreateRunMySQL(b *testing.B) {
	benchCreateRunKine(b, mysqltest.Require(b).DSN("bench_create"))
}

func benchCreateRunKine(b *testing.B, endpoint string) {
	benchCreateRun(b, openKine(b, endpoint))
}

func benchCreateRun(b *testing.B, s *Store) {
	ctx := context.Background()
	spec := json.RawMessage(`{"pipelineInfo":{"name":"bench"},"root":{"dag":{"tasks":{}}}}`)
	i := 0
	for b.Loop() {
		r := mkRun(i, "")
		i++
		if err := s.CreateRun(ctx, r, spec); err != nil {
			b.Fatal(err)
		}
	}
}
