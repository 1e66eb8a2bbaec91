// Package pgtest starts a throwaway PostgreSQL cluster for tests: Debian's postgresql
// package (scripts/ensure-deps.sh installs it), initdb into a temporary directory, pg_ctl
// serving on a unix socket in that directory only (no TCP listener), trust authentication.
// As root it runs the server as the postgres user the package creates, since PostgreSQL
// refuses to run as root.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/dbtemp"
)

// Server is a running cluster.
type Server struct {
	dir     string
	data    string
	pgCtl   string
	asUser  string // run commands as this user (root only)
	stopped atomic.Bool
}

// binDir finds the directory of initdb and pg_ctl: PATH first, then the newest
// /usr/lib/postgresql/<version>/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if q, err := exec.LookPath("initdb"); err == nil && filepath.Dir(p) == filepath.Dir(q) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found (install Debian's postgresql package: make deps)")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises and starts a cluster. Stop it with Stop.
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, account, err := dbtemp.Dir("kfpbox-pg-", "postgres", "postgresql")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), pgCtl: filepath.Join(bin, "pg_ctl"), asUser: account}
	if err := s.run(ctx, filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir)
	if err := s.run(ctx, s.pgCtl, "-D", s.data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return s, nil
}

func (s *Server) run(ctx context.Context, name string, args ...string) error {
	if s.asUser != "" {
		args = append([]string{"-u", s.asUser, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %v: %s", filepath.Base(name), args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// DSN is the postgres:// URL of database db (kine creates it when missing).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", db, s.dir)
}

// Stop stops the cluster and removes its files.
func (s *Server) Stop() {
	if s.stopped.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.run(ctx, s.pgCtl, "-D", s.data, "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

// Require starts a cluster for t and stops it when t ends. When PostgreSQL cannot start the
// test fails under CI=true and is skipped otherwise, naming the reason.
func Require(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL cannot start for this test: %v", firstLine(err))
		}
		t.Skipf("PostgreSQL cannot start, so this test is skipped (make deps installs it; CI=true turns this skip into a failure): %v", firstLine(err))
	}
	t.Cleanup(s.Stop)
	return s
}

func firstLine(err error) string {
	b, _, _ := bytes.Cut([]byte(err.Error()), []byte("\n"))
	return string(b)
}
