package auth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T, dir string, kvs kv.Store, c *clock, live map[string]bool) *Store {
	t.Helper()
	s, err := Open(context.Background(), kvs, Options{Dir: dir, Now: c.now, RunLive: func(_ context.Context, id string) bool { return live[id] }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(tmp, "meta.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kvs.Close()
	dir := filepath.Join(tmp, "auth")
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	live := map[string]bool{"r1": true}
	s := open(t, dir, kvs, c, live)

	// Files: the directory 0700, the admin token and the key 0600.
	for p, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, s.AdminTokenPath(): 0o600, filepath.Join(dir, keyFile): 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode() != mode {
			t.Fatalf("%s: mode %v, %v; want %v", p, fi.Mode(), err, mode)
		}
	}
	raw, _ := os.ReadFile(s.AdminTokenPath())
	admin := strings.TrimSpace(string(raw))
	if p, err := s.Verify(ctx, admin); err != nil || p.Scope != ScopeAdmin || p.Name != "admin" {
		t.Fatalf("admin token: %+v %v", p, err)
	}

	// Named tokens: the secret works, the store holds only its hash.
	sec, tok, err := s.Create(ctx, "ci", ScopeRead, time.Hour)
	if err != nil || tok.Scope != ScopeRead || !tok.ExpiresAt.Equal(c.t.Add(time.Hour)) {
		t.Fatalf("create: %+v %v", tok, err)
	}
	if p, err := s.Verify(ctx, sec); err != nil || p.Name != "ci" || p.Scope != ScopeRead {
		t.Fatalf("verify: %+v %v", p, err)
	}
	_ = kvs.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte("/"), nil, false, func(k, v []byte, _ int64) error {
			if bytes.Contains(v, []byte(sec)) || bytes.Contains(v, []byte(admin)) {
				t.Fatalf("the store holds a secret under %s", k)
			}
			return nil
		})
	})
	if _, _, err := s.Create(ctx, "ci", ScopeRead, 0); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	for _, bad := range []struct {
		name  string
		scope Scope
	}{{"", ScopeRead}, {"UPPER", ScopeRead}, {"admin", ScopeAdmin}, {"session-x", ScopeRead}, {"ok", "root"}, {"ok", ScopeRun}, {strings.Repeat("a", 64), ScopeRead}} {
		if _, _, err := s.Create(ctx, bad.name, bad.scope, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("create(%q, %q): %v, want ErrInvalid", bad.name, bad.scope, err)
		}
	}

	// Expiry.
	c.t = c.t.Add(time.Hour)
	if _, err := s.Verify(ctx, sec); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}

	// Run tokens: bound to the run id and to the run being live.
	rt := s.RunToken("r1")
	if p, err := s.Verify(ctx, rt); err != nil || p.Scope != ScopeRun || p.RunID != "r1" {
		t.Fatalf("run token: %+v %v", p, err)
	}
	for _, bad := range []string{s.RunToken("r2"), strings.Replace(rt, "r1", "r2", 1), rt + "x", "kfpbox-run.r1"} {
		if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("run token %q: %v", bad, err)
		}
	}
	live["r1"] = false
	if _, err := s.Verify(ctx, rt); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("token of a finished run: %v", err)
	}

	// Service tokens: read scope, bound to their purpose.
	svc := s.ServiceToken("pyenv")
	if p, err := s.Verify(ctx, svc); err != nil || p.Scope != ScopeRead || p.Name != "service/pyenv" {
		t.Fatalf("service token: %+v %v", p, err)
	}
	if _, err := s.Verify(ctx, strings.Replace(svc, "pyenv", "admin", 1)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("service token for another purpose: %v", err)
	}

	// Login codes: once, and not after their time.
	code, err := s.LoginCode(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	session, p, err := s.Login(ctx, code)
	if err != nil || p.Scope != ScopeAdmin || !strings.HasPrefix(p.Name, "session-") {
		t.Fatalf("login: %+v %v", p, err)
	}
	if _, _, err := s.Login(ctx, code); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("code used twice: %v", err)
	}
	late, _ := s.LoginCode(time.Minute)
	c.t = c.t.Add(2 * time.Minute)
	if _, _, err := s.Login(ctx, late); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired code: %v", err)
	}
	if _, _, err := s.Login(ctx, rt); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("run token logged in: %v", err)
	}
	if _, err := s.Verify(ctx, session); err != nil {
		t.Fatalf("session: %v", err)
	}
	if err := s.Logout(ctx, session); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, session); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("session after logout: %v", err)
	}

	// Revocation; the admin token cannot be revoked.
	sec2, _, _ := s.Create(ctx, "laptop", ScopeAdmin, 0)
	if err := s.Revoke(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, sec2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked: %v", err)
	}
	if err := s.Revoke(ctx, "admin"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoke admin: %v", err)
	}
	if err := s.Revoke(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke missing: %v", err)
	}

	// A restart keeps the admin token, the key (run tokens stay valid) and named tokens.
	live["r1"] = true
	sec3, _, _ := s.Create(ctx, "kept", ScopeRead, 0)
	s2 := open(t, dir, kvs, c, live)
	for _, secret := range []string{admin, sec3, rt} {
		if _, err := s2.Verify(ctx, secret); err != nil {
			t.Fatalf("after reopen, %q: %v", secret[:12], err)
		}
	}
	names := []string{}
	for _, tk := range s2.List() {
		names = append(names, tk.Name)
	}
	if strings.Join(names, ",") != "admin,ci,kept" {
		t.Fatalf("list after reopen = %v", names)
	}

	// Replacing the admin-token file by hand rotates it at the next start.
	if err := os.WriteFile(s.AdminTokenPath(), []byte("kfpbox_rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := open(t, dir, kvs, c, live)
	if _, err := s3.Verify(ctx, admin); err == nil {
		t.Fatal("the old admin token still works after rotation")
	}
	if _, err := s3.Verify(ctx, "kfpbox_rotated"); err != nil {
		t.Fatalf("rotated admin token: %v", err)
	}
}

func TestKubeconfig(t *testing.T) {
	got := string(Kubeconfig("https://127.0.0.1:8888", "kfpbox_x", []byte("PEM"), "kubeflow"))
	for _, want := range []string{"server: https://127.0.0.1:8888", "token: kfpbox_x", "certificate-authority-data: UEVN", "namespace: kubeflow", "current-context: kfp-box"} {
		if !strings.Contains(got, want) {
			t.Fatalf("kubeconfig lacks %q:\n%s", want, got)
		}
	}
}
