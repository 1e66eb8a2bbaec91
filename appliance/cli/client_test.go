package cli

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// endState is a fake engine that finishes every submitted run in a fixed state.
type endState struct {
	m     *meta.Store
	state string
}

func (e *endState) Submit(ctx context.Context, id string) error {
	_, err := e.m.UpdateRun(ctx, id, func(r *meta.Run) error {
		meta.SetRunState(r, e.state, time.Now().UTC(), nil)
		return nil
	})
	return err
}
func (e *endState) Terminate(context.Context, string) error { return nil }
func (e *endState) Retry(context.Context, string) error     { return nil }

// apiServer starts the real API over a bbolt file; runs end in state.
func apiServer(t *testing.T, state string) string {
	t.Helper()
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "meta.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvs.Close() })
	m, err := meta.Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Deps{Meta: m, Engine: &endState{m: m, state: state}}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func pipelineFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../api/testdata/params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "params.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if isUsage(err) {
		return 2
	}
	return 1
}

func TestClientCommands(t *testing.T) {
	url := apiServer(t, meta.RunSucceeded)
	file := pipelineFile(t)

	out, err := runCLI(t, "pipeline", "upload", file, "--server", url)
	if err != nil || !strings.Contains(out, "pipeline ") || !strings.Contains(out, "say-things") {
		t.Fatalf("upload: %q %v", out, err)
	}
	if _, err := runCLI(t, "pipeline", "upload", file, "--server", url); exitCode(err) != 2 {
		t.Fatalf("duplicate upload exit %d (%v), want 2", exitCode(err), err)
	}
	if out, err = runCLI(t, "pipeline", "list", "--server", url); err != nil || !strings.Contains(out, "say-things") {
		t.Fatalf("pipeline list: %q %v", out, err)
	}

	out, err = runCLI(t, "run", "submit", file, "-p", "msg=hello", "-p", "times=2", "--experiment", "cli-exp", "--watch", "--interval", "10ms", "--server", url)
	if err != nil || !strings.Contains(out, "SUCCEEDED") {
		t.Fatalf("submit --watch: %q %v", out, err)
	}
	id := strings.Fields(out)[1]
	if out, err = runCLI(t, "run", "get", id, "--server", url); err != nil || !strings.Contains(out, `Parameter times:  2`) || !strings.Contains(out, `"hello"`) {
		t.Fatalf("run get: %q %v", out, err)
	}
	if out, err = runCLI(t, "run", "list", "--experiment", "cli-exp", "--server", url); err != nil || !strings.Contains(out, id) {
		t.Fatalf("run list: %q %v", out, err)
	}
	if out, err = runCLI(t, "run", "list", "-o", "json", "--all", "--server", url); err != nil || !strings.HasPrefix(out, "[") {
		t.Fatalf("run list json: %q %v", out, err)
	}
	if out, err = runCLI(t, "experiment", "list", "--server", url); err != nil || !strings.Contains(out, "cli-exp") || !strings.Contains(out, "Default") {
		t.Fatalf("experiment list: %q %v", out, err)
	}

	for name, args := range map[string][]string{
		"unknown parameter": {"run", "submit", file, "-p", "nope=1"},
		"not key=value":     {"run", "submit", file, "-p", "msg"},
		"wrong type":        {"run", "submit", file, "-p", "msg=a", "-p", "times=many"},
		"missing required":  {"run", "submit", file},
		"missing file":      {"run", "submit", filepath.Join(t.TempDir(), "none.yaml")},
		"unknown run":       {"run", "get", "nope"},
		"unknown exp":       {"run", "list", "--experiment", "no-such"},
		"bad output":        {"run", "list", "-o", "xml"},
		"no args":           {"run", "get"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runCLI(t, append(args, "--server", url)...)
			if exitCode(err) != 2 {
				t.Fatalf("exit %d (%v), want 2", exitCode(err), err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestWatchExitsOneWhenTheRunFails(t *testing.T) {
	url := apiServer(t, meta.RunFailed)
	out, err := runCLI(t, "run", "submit", pipelineFile(t), "-p", "msg=x", "--watch", "--interval", "10ms", "--server", url)
	if exitCode(err) != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("exit %d, out %q, err %v", exitCode(err), out, err)
	}
}

func TestUnreachableServerIsFailure(t *testing.T) {
	_, err := runCLI(t, "run", "list", "--server", "http://127.0.0.1:1")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1", exitCode(err), err)
	}
}

// TestRunIDPrefixes submits enough runs that two share a first character (17 ids over 16
// hex digits), then checks that a prefix of one run's id is taken by every command that
// takes a run id, and that a shared prefix is exit 2 with one line listing the candidates.
func TestRunIDPrefixes(t *testing.T) {
	url := apiServer(t, meta.RunSucceeded)
	file := pipelineFile(t)
	var ids []string
	for i := 0; i < 17; i++ {
		out, err := runCLI(t, "run", "submit", file, "-p", "msg=x", "--server", url)
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		ids = append(ids, strings.Fields(out)[1])
	}
	byFirst := map[byte][]string{}
	for _, id := range ids {
		byFirst[id[0]] = append(byFirst[id[0]], id)
	}
	var shared []string
	for _, group := range byFirst {
		if len(group) > 1 {
			shared = group
			break
		}
	}
	if shared == nil {
		t.Fatalf("17 ids with distinct first characters: %v", ids)
	}
	prefix := shared[0][:1]
	// The shortest prefix of ids[0] that no other run has.
	unique := ""
	for n := 1; n <= len(ids[0]) && unique == ""; n++ {
		p, clash := ids[0][:n], false
		for _, other := range ids[1:] {
			clash = clash || strings.HasPrefix(other, p)
		}
		if !clash {
			unique = p
		}
	}

	out, err := runCLI(t, "run", "get", unique, "--server", url)
	if err != nil || !regexp.MustCompile(`Run ID:\s+`+ids[0]).MatchString(out) {
		t.Fatalf("run get %s: %v\n%s", unique, err, out)
	}
	exported := filepath.Join(t.TempDir(), "run.tar.gz")
	// This API has no object store, so the export stops at the artifacts; the request names
	// the whole id (a successful export by prefix is in the appliance's CLI test).
	if _, err = runCLI(t, "run", "export", unique, "-o", exported, "--server", url); err == nil || !strings.Contains(err.Error(), "/runs/"+ids[0]+"/artifacts") {
		t.Fatalf("run export %s: %v", unique, err)
	}
	for _, args := range [][]string{
		{"run", "get", prefix},
		{"run", "logs", prefix},
		{"logs", prefix, "some-task"},
		{"run", "export", prefix, "-o", exported},
	} {
		_, err := runCLI(t, append(args, "--server", url)...)
		if exitCode(err) != 2 {
			t.Fatalf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "ambiguous") {
			t.Errorf("%v: %q is not one line saying the prefix is ambiguous", args, msg)
		}
		for _, id := range shared {
			if !strings.Contains(msg, id) {
				t.Errorf("%v: %q does not list candidate %s", args, msg, id)
			}
		}
	}
	if _, err := runCLI(t, "run", "get", "no/such", "--server", url); exitCode(err) != 2 {
		t.Errorf("a run id with a slash: exit %d (%v), want 2", exitCode(err), err)
	}
}
