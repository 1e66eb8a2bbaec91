package kine_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kfp-box/kfp-box/internal/mysqltest"
	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/kine"
	"github.com/kfp-box/kfp-box/storage/kv/kvtest"
)

// TestConformancePostgres runs the kv suite against PostgreSQL.
func TestConformancePostgres(t *testing.T) {
	conformance(t, pgtest.Require(t).DSN)
}

// TestConformanceMySQL runs the kv suite against MariaDB (Debian's mariadb-server, through
// kine's mysql driver).
func TestConformanceMySQL(t *testing.T) {
	conformance(t, mysqltest.Require(t).DSN)
}

// conformance runs the kv suite on the server dsn names databases of: each store is its own
// database, named after the suite's directory so that reopening finds the same data.
func conformance(t *testing.T, dsn func(db string) string) {
	kvtest.Run(t, func(t *testing.T, dir string) kv.Store {
		sum := sha256.Sum256([]byte(dir))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := kine.Open(ctx, kine.Options{
			Endpoint:        dsn("kv_" + hex.EncodeToString(sum[:8])),
			CompactInterval: -1, // the suite compacts on demand
			PollInterval:    100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestOpenUnreachableEndsWithContext opens a datastore nothing serves: Open gives up when its
// context ends (kine alone would retry for minutes) and says why, without the password.
func TestOpenUnreachableEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := kine.Open(ctx, kine.Options{Endpoint: "postgres://kfp:hunter2@/kfp?host=" + t.TempDir() + "&sslmode=disable"})
	if err == nil {
		t.Fatal("Open of an unreachable datastore succeeded")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("Open took %v after its 2 s context", took)
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "kfp:xxxxx@") {
		t.Fatalf("error does not name the (redacted) datastore: %v", err)
	}
}

// TestMySQLKeyColumnIsBinary: a table kine's mysql driver made (text key column, which
// ignores case and trailing spaces) is converted at Open, and keys that column would
// confuse come back distinct and in byte order.
func TestMySQLKeyColumnIsBinary(t *testing.T) {
	my := mysqltest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := my.DSN("kine_made")
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, stmt := range []string{
		"CREATE DATABASE kine_made",
		// kine v0.17's own table, as its driver makes it.
		`CREATE TABLE kine_made.kine (id BIGINT UNSIGNED AUTO_INCREMENT, name VARCHAR(630) CHARACTER SET ascii,
			created INTEGER, deleted INTEGER, create_revision BIGINT UNSIGNED, prev_revision BIGINT UNSIGNED,
			lease INTEGER, value MEDIUMBLOB, old_value MEDIUMBLOB, PRIMARY KEY (id))`,
		"CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine_made.kine (name, prev_revision)",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	s, err := kine.Open(ctx, kine.Options{Endpoint: dsn, CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var typ string
	if err := db.QueryRowContext(ctx, `SELECT DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = 'kine_made' AND TABLE_NAME = 'kine' AND COLUMN_NAME = 'name'`).Scan(&typ); err != nil || typ != "varbinary" {
		t.Fatalf("name column is %q (%v), want varbinary", typ, err)
	}
	keys := []string{"/k/a", "/k/a ", "/k/A", "/k/_", "/k/a\x01", "/k/b"}
	if _, err := s.Update(ctx, func(tx kv.Tx) error {
		for _, k := range keys {
			if err := tx.Put([]byte(k), []byte(k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte("/k/"), nil, false, func(k, v []byte, _ int64) error {
			if string(k) != string(v) {
				t.Errorf("key %q holds %q", k, v)
			}
			got = append(got, string(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/k/A", "/k/_", "/k/a", "/k/a\x01", "/k/a ", "/k/b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("scan = %q, want %q (byte order, all distinct)", got, want)
	}
}

// TestOpenMySQLUnreachableHidesPassword: the mysql endpoint form with tcp(host:port), which
// is not a URL, is redacted too when Open fails (nothing listens on port 1 of loopback).
func TestOpenMySQLUnreachableHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := kine.Open(ctx, kine.Options{Endpoint: "mysql://kfp:hunter2@tcp(127.0.0.1:1)/kfp"})
	if err == nil {
		t.Fatal("Open of an unreachable datastore succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "kfp:xxxxx@tcp(127.0.0.1:1)") {
		t.Fatalf("error shows the password or not the redacted endpoint: %v", err)
	}
}

// TestMySQLLimitedUser: a user who owns an existing database but may not create databases
// (the usual grant for an application) can open it.
func TestMySQLLimitedUser(t *testing.T) {
	my := mysqltest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(my.DSN(""), "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, stmt := range []string{
		"CREATE DATABASE app",
		"CREATE USER 'kfp'@'localhost' IDENTIFIED BY 'pw'",
		"GRANT ALL PRIVILEGES ON app.* TO 'kfp'@'localhost'",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	limited := strings.Replace(my.DSN("app"), "mysql://root@", "mysql://kfp:pw@", 1)
	s, err := kine.Open(ctx, kine.Options{Endpoint: limited, CompactInterval: -1})
	if err != nil {
		t.Fatalf("open as a user limited to its database: %v", err)
	}
	defer s.Close()
	if _, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put([]byte("/a"), []byte("b")) }); err != nil {
		t.Fatal(err)
	}
	// The same user cannot make a database: the refusal is the server's, named.
	other := strings.Replace(my.DSN("other"), "mysql://root@", "mysql://kfp:pw@", 1)
	if _, err := kine.Open(ctx, kine.Options{Endpoint: other, CompactInterval: -1}); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("open of a database the user may not create: %v", err)
	}
}
