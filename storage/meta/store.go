package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Sentinel errors.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalid            = errors.New("invalid")
	ErrFailedPrecondition = errors.New("failed precondition")
)

// SchemaVersion is the version of the key layout this code writes.
const SchemaVersion = 2

var keySchemaVersion = []byte("/meta/version")

// migration upgrades the store from version to version+1 inside one transaction.
type migration struct {
	version int
	name    string
	apply   func(tx kv.Tx) error
}

// migrations is the ordered list; migrations[i] upgrades version i to i+1.
var migrations = []migration{
	{version: 0, name: "initial layout", apply: func(kv.Tx) error { return nil }},
	{version: 1, name: "default experiment", apply: addDefaultExperiment},
}

// Store is the metadata store.
type Store struct {
	kv     kv.Store
	logger *slog.Logger
	// idx holds the in-memory rows listing runs on; built by Open after migrating.
	idx indexes
}

// Open wraps a kv store, migrating its layout to SchemaVersion.
func Open(ctx context.Context, store kv.Store, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{kv: store, logger: logger}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.loadIndexes(ctx); err != nil {
		return nil, fmt.Errorf("load indexes: %w", err)
	}
	return s, nil
}

// update runs fn in a kv write transaction when the caller needs no revision.
func (s *Store) update(ctx context.Context, fn func(kv.Tx) error) error {
	_, err := s.kv.Update(ctx, fn)
	return err
}

// KV returns the underlying key-value store.
func (s *Store) KV() kv.Store { return s.kv }

func (s *Store) migrate(ctx context.Context) error {
	// A current schema is only read: opening must work on a full disk, to serve reads.
	current := false
	if err := s.kv.View(ctx, func(tx kv.Tx) error {
		cur, err := schemaVersion(tx)
		current = cur == SchemaVersion
		return err
	}); err != nil || current {
		return err
	}
	return s.update(ctx, func(tx kv.Tx) error {
		cur, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if cur > SchemaVersion {
			return fmt.Errorf("metadata schema version %d is newer than this kfp-box (%d): %w", cur, SchemaVersion, ErrFailedPrecondition)
		}
		for _, m := range migrations[cur:SchemaVersion] {
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
			s.logger.Info("migrated metadata", "from", m.version, "to", m.version+1, "migration", m.name)
		}
		return tx.Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
	})
}

// schemaVersion reads the stored schema version, 0 for a new store.
func schemaVersion(tx kv.Tx) (int, error) {
	v, err := tx.Get(keySchemaVersion)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("schema version %q: %w", v, ErrInvalid)
	}
	return n, nil
}

// getJSON decodes the value of key into v.
func getJSON(tx kv.Tx, key string, v any) error {
	b, err := tx.Get([]byte(key))
	if err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	return json.Unmarshal(b, v)
}

// putJSON encodes v as the value of key.
func putJSON(tx kv.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put([]byte(key), b)
}

// scanJSON decodes every value under prefix, calling fn with a fresh T each time.
func scanJSON[T any](tx kv.Tx, prefix string, fn func(*T) error) error {
	return tx.Scan([]byte(prefix), nil, false, func(_, v []byte, _ int64) error {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return err
		}
		return fn(t)
	})
}
