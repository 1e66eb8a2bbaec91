package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Sentinel errors.
var (
	// ErrUnauthenticated means no credential, or one the box does not know.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrNotFound means no token has that name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a token already has that name.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid means a bad name, scope or lifetime.
	ErrInvalid = errors.New("invalid argument")
)

// Scope is what a credential may do.
type Scope string

// Scopes, from the most to the least powerful.
const (
	// ScopeAdmin may do everything the box's owner can: create runs, read Secrets, manage tokens.
	ScopeAdmin Scope = "admin"
	// ScopeRead may read the KFP API and the UI, but neither Secrets nor tokens.
	ScopeRead Scope = "read"
	// ScopeRun is a task's credential: reads, like ScopeRead, and the package index, for as
	// long as its run is not finished.
	ScopeRun Scope = "run"
)

// Principal is who a request acts as.
type Principal struct {
	// Name of the token ("admin", a name given to `token create`, "session/…", "run/<id>").
	Name string
	// Scope of the token.
	Scope Scope
	// RunID is set for ScopeRun.
	RunID string
}

// Token is a stored credential; the secret itself is never stored, only its SHA-256.
type Token struct {
	Name      string    `json:"name"`
	Scope     Scope     `json:"scope"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for tokens that do not expire.
	ExpiresAt time.Time `json:"expires_at,omitempty"`
	// Session marks a UI login's token (cookie), as opposed to a named API token.
	Session bool `json:"session,omitempty"`
}

// Expired says whether t is past its expiry at now.
func (t Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// File names under the auth directory.
const (
	// AdminTokenFile holds the admin token, mode 0600.
	AdminTokenFile = "admin-token"
	keyFile        = "run-token.key"
)

// tokenPrefix starts every token the box makes, so that a leaked one is easy to grep for.
const tokenPrefix = "kfpbox_"

// runTokenPrefix starts a run's token: kfpbox-run.<run id>.<mac> (the MAC is base64url,
// which has no '.').
const runTokenPrefix = "kfpbox-run."

// kvPrefix is where tokens live in the store.
var kvPrefix = []byte("/auth/tokens/")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Options configure a Store.
type Options struct {
	// Dir holds the admin token and the run-token key (created 0700).
	Dir string
	// RunLive says whether a run may still use its token (not finished, not deleted).
	// Nil means run tokens are never valid.
	RunLive func(ctx context.Context, runID string) bool
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Store keeps the box's tokens: named tokens and UI sessions in the kv store (hashed), the
// admin token in a 0600 file, one-time login codes in memory, and run tokens derived from a
// key (an HMAC of the run id), so that nothing is written per run.
type Store struct {
	kv      kv.Store
	opts    Options
	key     []byte
	mu      sync.RWMutex
	byHash  map[string]Token
	codes   map[string]time.Time // one-time login code hash → expiry
	codesMu sync.Mutex
}

// Open loads the tokens, creating the auth directory, the run-token key and the admin token
// on first use. Files are written once and never rewritten, so a box restarts on a full disk.
func Open(ctx context.Context, store kv.Store, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth dir: %w", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth dir: %w", err)
	}
	s := &Store{kv: store, opts: opts, byHash: map[string]Token{}, codes: map[string]time.Time{}}
	key, err := readOrCreate(filepath.Join(opts.Dir, keyFile), func() (string, error) { return randomString(32) })
	if err != nil {
		return nil, fmt.Errorf("run-token key: %w", err)
	}
	s.key = []byte(key)
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	admin, err := readOrCreate(filepath.Join(opts.Dir, AdminTokenFile), newToken)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if err := s.ensureAdmin(ctx, admin); err != nil {
		return nil, err
	}
	return s, nil
}

// AdminTokenPath is the file holding the admin token.
func (s *Store) AdminTokenPath() string { return filepath.Join(s.opts.Dir, AdminTokenFile) }

func (s *Store) load(ctx context.Context) error {
	return s.kv.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(kvPrefix, nil, false, func(_, v []byte, _ int64) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("token record: %w", err)
			}
			s.byHash[t.Hash] = t
			return nil
		})
	})
}

// ensureAdmin records the admin token's hash when the store does not have it (first start,
// or a data directory whose admin-token file was replaced by hand to rotate it).
func (s *Store) ensureAdmin(ctx context.Context, token string) error {
	h := hashToken(token)
	s.mu.RLock()
	t, ok := s.byHash[h]
	s.mu.RUnlock()
	if ok && t.Name == "admin" {
		return nil
	}
	t = Token{Name: "admin", Scope: ScopeAdmin, Hash: h, CreatedAt: s.opts.Now().UTC()}
	err := s.put(ctx, t, true)
	if err != nil && isNoSpace(err) {
		// Read-only start on a full disk: the admin token works for this process.
		s.mu.Lock()
		s.byHash[h] = t
		s.mu.Unlock()
		return nil
	}
	return err
}

// put stores t under its name; replace allows overwriting an existing name.
func (s *Store) put(ctx context.Context, t Token, replace bool) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	var old string
	_, err = s.kv.Update(ctx, func(tx kv.Tx) error {
		old = "" // fn may be retried
		k := append(append([]byte(nil), kvPrefix...), t.Name...)
		prev, err := tx.Get(k)
		switch {
		case err == nil:
			if !replace {
				return fmt.Errorf("token %q: %w", t.Name, ErrAlreadyExists)
			}
			var p Token
			if json.Unmarshal(prev, &p) == nil {
				old = p.Hash
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		return tx.Put(k, b)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if old != "" {
		delete(s.byHash, old)
	}
	s.byHash[t.Hash] = t
	s.mu.Unlock()
	return nil
}

// Create makes a named token and returns its secret, which is shown once and never stored.
// ttl 0 means it does not expire.
func (s *Store) Create(ctx context.Context, name string, scope Scope, ttl time.Duration) (string, Token, error) {
	if !nameRE.MatchString(name) || name == "admin" || strings.HasPrefix(name, "session") {
		return "", Token{}, fmt.Errorf("token name %q: want 1-63 of a-z, 0-9, '.', '_', '-' (not admin or session*): %w", name, ErrInvalid)
	}
	if scope != ScopeAdmin && scope != ScopeRead {
		return "", Token{}, fmt.Errorf("scope %q: want admin or read: %w", scope, ErrInvalid)
	}
	if ttl < 0 {
		return "", Token{}, fmt.Errorf("lifetime %v: %w", ttl, ErrInvalid)
	}
	return s.create(ctx, name, scope, ttl, false)
}

func (s *Store) create(ctx context.Context, name string, scope Scope, ttl time.Duration, session bool) (string, Token, error) {
	secret, err := newToken()
	if err != nil {
		return "", Token{}, err
	}
	now := s.opts.Now().UTC()
	t := Token{Name: name, Scope: scope, Hash: hashToken(secret), CreatedAt: now, Session: session}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := s.put(ctx, t, false); err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// List returns the stored tokens (never their secrets), sorted by name. Expired sessions
// are left out.
func (s *Store) List() []Token {
	now := s.opts.Now()
	s.mu.RLock()
	out := make([]Token, 0, len(s.byHash))
	for _, t := range s.byHash {
		if t.Session && t.Expired(now) {
			continue
		}
		out = append(out, t)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Revoke deletes the named token. The admin token cannot be revoked: replace its file and
// restart to rotate it.
func (s *Store) Revoke(ctx context.Context, name string) error {
	if name == "admin" {
		return fmt.Errorf("the admin token cannot be revoked; to rotate it, replace %s and restart: %w", s.AdminTokenPath(), ErrInvalid)
	}
	var hash string
	_, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		hash = "" // fn may be retried
		k := append(append([]byte(nil), kvPrefix...), name...)
		v, err := tx.Get(k)
		if errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("token %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var t Token
		if json.Unmarshal(v, &t) == nil {
			hash = t.Hash
		}
		return tx.Delete(k)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.byHash, hash)
	s.mu.Unlock()
	return nil
}

// Verify says who a presented token belongs to.
func (s *Store) Verify(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, ErrUnauthenticated
	}
	if strings.HasPrefix(secret, runTokenPrefix) {
		return s.verifyRun(ctx, secret)
	}
	if strings.HasPrefix(secret, serviceTokenPrefix) {
		return s.verifyService(secret)
	}
	s.mu.RLock()
	t, ok := s.byHash[hashToken(secret)]
	s.mu.RUnlock()
	if !ok {
		return Principal{}, fmt.Errorf("unknown or revoked token: %w", ErrUnauthenticated)
	}
	if t.Expired(s.opts.Now()) {
		return Principal{}, fmt.Errorf("token %q expired at %s: %w", t.Name, t.ExpiresAt.Format(time.RFC3339), ErrUnauthenticated)
	}
	return Principal{Name: t.Name, Scope: t.Scope}, nil
}

// serviceTokenPrefix starts a token the box uses for its own calls: kfpbox-svc.<purpose>.<mac>.
const serviceTokenPrefix = "kfpbox-svc."

// ServiceToken is a read-scope credential for the box's own calls to itself (pip filling a
// Python environment from the box's index). It is derived from the key, held only in memory
// and handed only to the box's own children, through their environment.
func (s *Store) ServiceToken(purpose string) string {
	return serviceTokenPrefix + purpose + "." + s.mac("svc:"+purpose)
}

func (s *Store) verifyService(secret string) (Principal, error) {
	rest := strings.TrimPrefix(secret, serviceTokenPrefix)
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || !hmac.Equal([]byte(rest[i+1:]), []byte(s.mac("svc:"+rest[:i]))) {
		return Principal{}, fmt.Errorf("unknown service token: %w", ErrUnauthenticated)
	}
	return Principal{Name: "service/" + rest[:i], Scope: ScopeRead}, nil
}

// RunToken is the credential handed to the tasks of a run: valid while RunLive says so.
func (s *Store) RunToken(runID string) string {
	return runTokenPrefix + runID + "." + s.runMAC(runID)
}

func (s *Store) runMAC(runID string) string { return s.mac("run:" + runID) }

func (s *Store) mac(msg string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Store) verifyRun(ctx context.Context, secret string) (Principal, error) {
	rest := strings.TrimPrefix(secret, runTokenPrefix)
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return Principal{}, fmt.Errorf("malformed run token: %w", ErrUnauthenticated)
	}
	runID, mac := rest[:i], rest[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.runMAC(runID))) {
		return Principal{}, fmt.Errorf("unknown run token: %w", ErrUnauthenticated)
	}
	if s.opts.RunLive == nil || !s.opts.RunLive(ctx, runID) {
		return Principal{}, fmt.Errorf("the token of run %q ended with its run: %w", runID, ErrUnauthenticated)
	}
	return Principal{Name: "run/" + runID, Scope: ScopeRun, RunID: runID}, nil
}

// LoginCode makes a one-time code for the UI login link, valid for ttl. The code is not a
// token: it is spent at its first use and only buys a session.
func (s *Store) LoginCode(ttl time.Duration) (string, error) {
	code, err := randomString(24)
	if err != nil {
		return "", err
	}
	now := s.opts.Now()
	s.codesMu.Lock()
	defer s.codesMu.Unlock()
	for h, exp := range s.codes {
		if !now.Before(exp) {
			delete(s.codes, h)
		}
	}
	s.codes[hashToken(code)] = now.Add(ttl)
	return code, nil
}

// SessionTTL is how long a UI login lasts.
const SessionTTL = 7 * 24 * time.Hour

// Login turns a one-time code or a token into a UI session with the scope behind it, and
// returns the session's secret (the cookie's value).
func (s *Store) Login(ctx context.Context, codeOrToken string) (string, Principal, error) {
	scope := ScopeAdmin
	h := hashToken(codeOrToken)
	s.codesMu.Lock()
	exp, isCode := s.codes[h]
	if isCode {
		delete(s.codes, h)
	}
	s.codesMu.Unlock()
	switch {
	case isCode && !s.opts.Now().Before(exp):
		return "", Principal{}, fmt.Errorf("the login link expired; make a new one with 'kfp-box token login-link': %w", ErrUnauthenticated)
	case !isCode:
		p, err := s.Verify(ctx, codeOrToken)
		if err != nil {
			return "", Principal{}, err
		}
		if p.Scope == ScopeRun {
			return "", Principal{}, fmt.Errorf("a run's token cannot log in to the UI: %w", ErrUnauthenticated)
		}
		scope = p.Scope
	}
	id, err := randomString(9)
	if err != nil {
		return "", Principal{}, err
	}
	name := "session-" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(id))
	secret, t, err := s.create(ctx, name, scope, SessionTTL, true)
	if err != nil {
		return "", Principal{}, err
	}
	return secret, Principal{Name: t.Name, Scope: t.Scope}, nil
}

// Logout revokes the session behind secret, if it is one.
func (s *Store) Logout(ctx context.Context, secret string) error {
	s.mu.RLock()
	t, ok := s.byHash[hashToken(secret)]
	s.mu.RUnlock()
	if !ok || !t.Session {
		return nil
	}
	return s.Revoke(ctx, t.Name)
}

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func newToken() (string, error) {
	r, err := randomString(32)
	if err != nil {
		return "", err
	}
	return tokenPrefix + r, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// readOrCreate returns the trimmed content of path, creating it (0600, written once, synced)
// with make() when it does not exist.
func readOrCreate(path string, make func() (string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty; delete it to have a new one made", path)
		}
		return v, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(v + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return "", werr
	}
	return v, nil
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || (err != nil && strings.Contains(err.Error(), syscall.ENOSPC.Error()))
}
