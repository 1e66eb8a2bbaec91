// Package mysqltest starts a throwaway MariaDB server for tests: Debian's mariadb-server
// package (scripts/ensure-deps.sh installs it), mariadb-install-db into a temporary
// directory, mariadbd serving on a unix socket in that directory only (networking off),
// root without a password. As root it runs the server as the mysql user the package creates,
// since mariadbd refuses to run as root unless told to.
package mysqltest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kfp-box/kfp-box/internal/dbtemp"
	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// Server is a running server.
type Server struct {
	dir     string
	cmd     *exec.Cmd
	done    chan error
	stopped atomic.Bool
}

// find returns the path of a program of the package: PATH, then /usr/sbin and /usr/bin.
func find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (install Debian's mariadb-server package: make deps)", name)
}

// Start initialises and starts a server. Stop it with Stop.
func Start(ctx context.Context) (*Server, error) {
	mariadbd, err := find("mariadbd")
	if err != nil {
		return nil, err
	}
	installDB, err := find("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	dir, account, err := dbtemp.Dir("kfpbox-my-", "mysql", "mariadb-server")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan error, 1)}
	var asUser []string
	if account != "" {
		asUser = []string{"--user=" + account}
	}
	data := filepath.Join(dir, "data")
	install := exec.CommandContext(ctx, installDB, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}, asUser...)...)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %v: %s", err, lastLines(out))
	}
	// Durability is not what these tests measure: no flush per commit, no binary log.
	s.cmd = exec.Command(mariadbd, append([]string{"--no-defaults", "--datadir=" + data,
		"--socket=" + s.socket(), "--skip-networking", "--skip-name-resolve", "--skip-log-bin",
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"), "--log-error=" + filepath.Join(dir, "error.log"),
		"--tmpdir=" + dir, "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
		"--innodb-buffer-pool-size=64M", "--max-connections=200"}, asUser...)...)
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.wait(ctx); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, lastLines(log))
	}
	return s, nil
}

func (s *Server) socket() string { return filepath.Join(s.dir, "mysql.sock") }

// wait pings the server until it answers, it exits, or ctx ends.
func (s *Server) wait(ctx context.Context) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.socket()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.done:
			s.done <- werr
			return fmt.Errorf("mariadbd exited while starting: %v", werr)
		case <-ctx.Done():
			return fmt.Errorf("mariadbd did not answer: %v (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// DSN is the mysql:// URL of database db (kine creates it when missing).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("mysql://root@unix(%s)/%s", s.socket(), db)
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	if s.stopped.Swap(true) {
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Require starts a server for t and stops it when t ends. When MariaDB cannot start the
// test fails under CI=true and is skipped otherwise, naming the reason in one line.
func Require(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		testmaterial.Missing(t, "MariaDB cannot start for this test (make deps installs Debian's mariadb-server): %v", firstLine(err))
	}
	t.Cleanup(s.Stop)
	return s
}

func firstLine(err error) string {
	b, _, _ := bytes.Cut([]byte(err.Error()), []byte("\n"))
	return string(b)
}

// lastLines keeps the end of a long log.
func lastLines(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return b
}
