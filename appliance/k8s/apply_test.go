package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/k8s"
)

// kubectlRunner runs the real kubectl against a subset served at url (kubectlFor), with a
// variant that fails the test on a non-zero exit.
func kubectlRunner(t *testing.T, url string) (run func(args ...string) (string, error), must func(args ...string) string) {
	t.Helper()
	_, _, run = kubectlFor(t, url)
	must = func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return out
	}
	return run, must
}

// managers returns "manager/operation" for each managedFields entry of an object.
func managers(o *k8s.Object) []string {
	var out []string
	for _, e := range o.Metadata.ManagedFields {
		out = append(out, e.Manager+"/"+string(e.Operation))
	}
	return out
}

func owns(o *k8s.Object, manager, field string) bool {
	for _, e := range o.Metadata.ManagedFields {
		if e.Manager == manager && e.FieldsV1 != nil && strings.Contains(string(e.FieldsV1.Raw), `"f:`+field+`"`) {
			return true
		}
	}
	return false
}

// TestKubectlServerSideApply: `kubectl apply --server-side` creates and then updates a
// ConfigMap and a Secret, removes what the manager applied before and dropped, records
// managedFields, and a second manager changing a field the first owns gets 409 Conflict
// unless it forces, after which it owns the field.
func TestKubectlServerSideApply(t *testing.T) {
	s := newStore(t)
	url := serve(t, s)
	run, must := kubectlRunner(t, url)
	ctx := context.Background()
	dir := t.TempDir()
	manifest := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cm := func(data string) string {
		return manifest("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels: {team: vision}\ndata:\n"+data)
	}
	if out := must("apply", "--server-side", "-f", cm("  mode: fast\n  level: \"3\"\n")); !strings.Contains(out, "serverside-applied") {
		t.Fatalf("first server-side apply: %s", out)
	}
	o, err := s.Get(ctx, "configmaps", "kubeflow", "app")
	if err != nil || string(o.Data["mode"]) != "fast" || string(o.Data["level"]) != "3" || o.Metadata.Labels["team"] != "vision" {
		t.Fatalf("after create: %+v %v", o, err)
	}
	if m := managers(o); len(m) != 1 || m[0] != "kubectl/Apply" || !owns(o, "kubectl", "level") {
		t.Fatalf("managedFields after create: %v", m)
	}
	rv := o.Metadata.ResourceVersion
	// Applying the same configuration again changes nothing and writes nothing.
	must("apply", "--server-side", "-f", cm("  mode: fast\n  level: \"3\"\n"))
	if o, _ = s.Get(ctx, "configmaps", "kubeflow", "app"); o.Metadata.ResourceVersion != rv {
		t.Fatalf("a no-op apply wrote the object: resourceVersion %s -> %s", rv, o.Metadata.ResourceVersion)
	}
	must("apply", "--server-side", "-f", cm("  mode: slow\n"))
	o, _ = s.Get(ctx, "configmaps", "kubeflow", "app")
	if string(o.Data["mode"]) != "slow" || o.Data["level"] != nil {
		t.Fatalf("after update: %q (want mode=slow, level removed as the manager dropped it)", o.Data)
	}

	// A second manager: alice sets a key of her own (no conflict), then kubectl's.
	alice := manifest("alice.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  owner: alice\n")
	must("apply", "--server-side", "--field-manager=alice", "-f", alice)
	o, _ = s.Get(ctx, "configmaps", "kubeflow", "app")
	if string(o.Data["owner"]) != "alice" || string(o.Data["mode"]) != "slow" || !owns(o, "alice", "owner") || owns(o, "alice", "mode") {
		t.Fatalf("after alice's apply: %q %v", o.Data, managers(o))
	}
	conflicting := manifest("alice2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  owner: alice\n  mode: turbo\n")
	out, err := run("apply", "--server-side", "--field-manager=alice", "-f", conflicting)
	if err == nil || !strings.Contains(out, "conflict") || !strings.Contains(out, `"kubectl"`) || !strings.Contains(out, ".data.mode") {
		t.Fatalf("conflicting apply: %v\n%s", err, out)
	}
	if o, _ = s.Get(ctx, "configmaps", "kubeflow", "app"); string(o.Data["mode"]) != "slow" {
		t.Fatalf("a refused apply changed the object: %q", o.Data)
	}
	must("apply", "--server-side", "--field-manager=alice", "--force-conflicts", "-f", conflicting)
	o, _ = s.Get(ctx, "configmaps", "kubeflow", "app")
	if string(o.Data["mode"]) != "turbo" || !owns(o, "alice", "mode") || owns(o, "kubectl", "mode") {
		t.Fatalf("after a forced apply: %q %v", o.Data, managers(o))
	}

	// A field changed by an update (kubectl patch) is owned by its manager too.
	must("patch", "configmap", "app", "--type", "merge", "-p", `{"data":{"owner":"bob"}}`)
	out, err = run("apply", "--server-side", "--field-manager=alice", "-f", conflicting)
	if err == nil || !strings.Contains(out, `"kubectl-patch"`) {
		t.Fatalf("apply over an update manager's field: %v\n%s", err, out)
	}

	// A Secret, with stringData, created and updated by server-side apply.
	sec := func(pw string) string {
		return manifest("sec.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: test-secret-1\nstringData:\n  password: "+pw+"\n")
	}
	must("apply", "--server-side", "-f", sec("psw1"))
	must("apply", "--server-side", "-f", sec("psw2"))
	if d, err := s.Secret(ctx, "test-secret-1"); err != nil || string(d["password"]) != "psw2" {
		t.Fatalf("secret after server-side apply: %q %v", d["password"], err)
	}
	if out := must("get", "secret", "test-secret-1", "-o", "jsonpath={.type}"); out != "Opaque" {
		t.Fatalf("secret type = %q", out)
	}
	// Client-side apply and edit still work on an object server-side apply made.
	must("apply", "-f", cm("  mode: slow\n"))
}

// TestServerSideApplyConflictStatus: the 409 is the API server's Status with one
// FieldManagerConflict cause per field.
func TestServerSideApplyConflictStatus(t *testing.T) {
	url := serve(t, newStore(t))
	apply := func(manager, body string, force bool) (int, map[string]any) {
		u := url + "/api/v1/namespaces/kubeflow/configmaps/c?fieldManager=" + manager
		if force {
			u += "&force=true"
		}
		req, _ := http.NewRequest(http.MethodPatch, u, strings.NewReader(body))
		req.Header.Set("Content-Type", k8s.ApplyPatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got
	}
	if code, got := apply("a", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: '1', z: '2'}\n", false); code != http.StatusCreated {
		t.Fatalf("create by apply: %d %v", code, got)
	}
	code, got := apply("b", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"x":"9","z":"8"}}`, false)
	if code != http.StatusConflict || got["kind"] != "Status" || got["reason"] != "Conflict" {
		t.Fatalf("conflict: %d %v", code, got)
	}
	causes, _ := got["details"].(map[string]any)["causes"].([]any)
	fields := map[string]bool{}
	for _, c := range causes {
		c := c.(map[string]any)
		if c["type"] != "FieldManagerConflict" {
			t.Fatalf("cause %v", c)
		}
		fields[c["field"].(string)] = true
	}
	if len(fields) != 2 || !fields[".data.x"] || !fields[".data.z"] {
		t.Fatalf("causes %v", causes)
	}
	if code, got := apply("b", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"x":"9","z":"8"}}`, true); code != http.StatusOK {
		t.Fatalf("forced: %d %v", code, got)
	}
	// The same values as the owner's are no conflict: shared ownership.
	if code, got := apply("a", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: '9'}\n", false); code != http.StatusOK {
		t.Fatalf("agreeing apply: %d %v", code, got)
	}
}

// TestKubectlJSONPatch: kubectl patch --type=json adds, replaces and removes keys; a
// failing test operation changes nothing.
func TestKubectlJSONPatch(t *testing.T) {
	s := newStore(t)
	url := serve(t, s)
	run, must := kubectlRunner(t, url)
	ctx := context.Background()
	must("create", "secret", "generic", "s", "--from-literal=username=user1", "--from-literal=old=x")
	must("patch", "secret", "s", "--type=json", "-p", `[{"op":"add","path":"/data/password","value":"cHN3MQ=="},{"op":"remove","path":"/data/old"},{"op":"replace","path":"/metadata/labels","value":{"a":"b"}}]`)
	o, err := s.Get(ctx, "secrets", "kubeflow", "s")
	if err != nil || string(o.Data["password"]) != "psw1" || o.Data["old"] != nil || string(o.Data["username"]) != "user1" || o.Metadata.Labels["a"] != "b" {
		t.Fatalf("after json patch: %q %v %v", o.Data, o.Metadata.Labels, err)
	}
	if !owns(o, "kubectl-patch", "password") {
		t.Fatalf("json patch's fields are not owned by kubectl-patch: %v", managers(o))
	}
	out, err := run("patch", "secret", "s", "--type=json", "-p", `[{"op":"test","path":"/data/username","value":"bm9wZQ=="},{"op":"remove","path":"/data/username"}]`)
	if err == nil || !strings.Contains(out, "test failed") {
		t.Fatalf("failing test op: %v\n%s", err, out)
	}
	if o, _ = s.Get(ctx, "secrets", "kubeflow", "s"); string(o.Data["username"]) != "user1" {
		t.Fatalf("a failed json patch changed the object: %q", o.Data)
	}
	out, err = run("patch", "configmap", "missing", "--type=json", "-p", `[{"op":"add","path":"/data/a","value":"1"}]`)
	if err == nil || !strings.Contains(out, "NotFound") && !strings.Contains(out, "not found") {
		t.Fatalf("json patch of a missing object: %v\n%s", err, out)
	}
}

// TestBadPatches: malformed or impossible patches and applies are 4xx Kubernetes Status
// answers, never a 500.
func TestBadPatches(t *testing.T) {
	s := newStore(t)
	url := serve(t, s)
	if _, err := s.Create(context.Background(), "configmaps", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: "c"}, Data: map[string][]byte{"a": []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ct, query, body string
		code                  int
	}{
		{"json patch not JSON", k8s.JSONPatch, "", `[{"op":`, 422},
		{"json patch not a list", k8s.JSONPatch, "", `{"op":"add"}`, 422},
		{"json patch unknown op", k8s.JSONPatch, "", `[{"op":"frobnicate","path":"/data/a"}]`, 422},
		{"json patch missing path", k8s.JSONPatch, "", `[{"op":"remove","path":"/data/zzz"}]`, 422},
		{"json patch renames", k8s.JSONPatch, "", `[{"op":"replace","path":"/metadata/name","value":"d"}]`, 422},
		{"json patch bad key", k8s.JSONPatch, "", `[{"op":"add","path":"/data/a~1b","value":"1"}]`, 422},
		{"json patch makes data a list", k8s.JSONPatch, "", `[{"op":"replace","path":"/data","value":[1]}]`, 422},
		{"merge patch not JSON", k8s.MergePatch, "", `{`, 422},
		{"strategic patch a list", k8s.StrategicPatch, "", `[]`, 422},
		{"unsupported type", "application/x-yaml", "", `a: b`, 415},
		{"apply without manager", k8s.ApplyPatch, "", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", 422},
		{"apply not YAML", k8s.ApplyPatch, "?fieldManager=m", "a: [", 422},
		{"apply alias bomb", k8s.ApplyPatch, "?fieldManager=m", aliasBomb(), 422},
		{"apply a list", k8s.ApplyPatch, "?fieldManager=m", "- a\n", 422},
		{"apply wrong kind", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\n", 422},
		{"apply other name", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n", 422},
		{"apply other namespace", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n", 422},
		{"apply with managedFields", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, managedFields: [{manager: x}]}\n", 422},
		{"apply data not a map", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: [1, 2]\n", 422},
		{"apply data value not a string", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: {b: c}}\n", 422},
		{"apply stale resourceVersion", k8s.ApplyPatch, "?fieldManager=m", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, resourceVersion: '99999'}\ndata: {a: '2'}\n", 409},
		{"update with bad managedFields", k8s.MergePatch, "", `{"metadata":{"managedFields":[{"manager":"x","operation":"Apply","fieldsType":"FieldsV1","fieldsV1":{"f:data":7}}]}}`, 422},
		{"field manager too long", k8s.MergePatch, "?fieldManager=" + strings.Repeat("m", 129), `{}`, 422},
	} {
		req, _ := http.NewRequest(http.MethodPatch, url+"/api/v1/namespaces/kubeflow/configmaps/c"+tc.query, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != tc.code || st["kind"] != "Status" || st["code"] != float64(tc.code) {
			t.Errorf("%s: %d %v (want %d)", tc.name, resp.StatusCode, st, tc.code)
		}
	}
	if cm, err := s.ConfigMap(context.Background(), "c"); err != nil || cm["a"] != "1" || len(cm) != 1 {
		t.Fatalf("bad patches changed the object: %v %v", cm, err)
	}
}

// aliasBomb is a YAML document of a few hundred bytes whose aliases expand to 9^9 strings.
func aliasBomb() string {
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\na: &a [x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 8) + "*" + prev + "]\n"
		prev = n
	}
	return doc
}

// FuzzApplyConfig: any apply body is parsed and applied to a live object with an error or
// an object of the served shape, never a panic.
func FuzzApplyConfig(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: b}}\ndata: {x: '1'}\n"), true, false)
	f.Add([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":null},"binaryData":{"b":"AA=="}}`), false, true)
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, finalizers: [a, a]}\n"), false, false)
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nextra: {deep: [1, {x: y}]}\n"), true, true)
	f.Add([]byte("&a [*a]"), false, false)
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {kubectl.kubernetes.io/last-applied-configuration: x}}\ndata: {a: '2'}\n"), false, true)
	// The live object came from a client-side apply: it carries the last-applied annotation
	// that kubectl's server-side apply takes over from.
	live := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "kubeflow",
		"annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1"}}`}},
		"data": map[string]any{"a": "1", "x": "2"}}
	entries, err := k8s.ManageUpdate("configmaps", nil, live, "kubectl-client-side-apply", time.Unix(1e9, 0))
	if err != nil {
		f.Fatal(err)
	}
	live["metadata"].(map[string]any)["managedFields"] = entries
	f.Fuzz(func(t *testing.T, body []byte, force, asKubectl bool) {
		cfg, err := k8s.ParseApplyConfig("configmaps", body)
		if err != nil {
			return
		}
		manager := "fuzz"
		if asKubectl {
			manager = "kubectl"
		}
		out, err := k8s.ApplyDocument("configmaps", live, cfg, manager, force, time.Unix(1e9, 0))
		if err != nil || out == nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("applied document does not marshal: %v", err)
		}
	})
}

// FuzzJSONPatch: JSON patches of a document give JSON or an error, never a panic.
func FuzzJSONPatch(f *testing.F) {
	f.Add([]byte(`{"data":{"a":"1"},"l":[1,2]}`), []byte(`[{"op":"add","path":"/data/b","value":"2"},{"op":"remove","path":"/l/-1"}]`))
	f.Add([]byte(`{"a":{}}`), []byte(`[{"op":"copy","from":"/a","path":"/a/b"},{"op":"move","from":"/a","path":"/c"}]`))
	f.Add([]byte(`[]`), []byte(`[{"op":"test","path":"","value":[]}]`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		out, err := k8s.ApplyJSONPatch(doc, patch)
		if err == nil && !json.Valid(out) {
			t.Fatalf("json patch gave invalid JSON %q", out)
		}
	})
}

// TestKubectlDryRun: dryRun=All (kubectl diff, --dry-run=server) answers what a write
// would make and stores nothing, for server-side apply, patch, create and delete.
func TestKubectlDryRun(t *testing.T) {
	s := newStore(t)
	url := serve(t, s)
	run, must := kubectlRunner(t, url)
	ctx := context.Background()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "cm.yaml")
	write := func(mode string) {
		if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  mode: "+mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fast")
	must("apply", "--server-side", "--dry-run=server", "-f", manifest)
	if _, err := s.Get(ctx, "configmaps", "kubeflow", "app"); err == nil {
		t.Fatal("a dry-run apply created the object")
	}
	must("apply", "--server-side", "-f", manifest)
	before, _ := s.Get(ctx, "configmaps", "kubeflow", "app")
	write("slow")
	// kubectl diff asks the server for a dry-run apply and shows the change; exit code 1
	// means "differences found".
	out, err := run("diff", "--server-side", "-f", manifest)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "+  mode: slow") {
		t.Fatalf("kubectl diff --server-side: %v\n%s", err, out)
	}
	out, err = run("diff", "-f", manifest)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "+  mode: slow") {
		t.Fatalf("kubectl diff: %v\n%s", err, out)
	}
	must("apply", "--server-side", "--dry-run=server", "-f", manifest)
	must("patch", "configmap", "app", "--dry-run=server", "--type=json", "-p", `[{"op":"replace","path":"/data/mode","value":"x"}]`)
	must("create", "configmap", "other", "--dry-run=server", "--from-literal=a=b")
	must("delete", "configmap", "app", "--dry-run=server")
	after, err := s.Get(ctx, "configmaps", "kubeflow", "app")
	if err != nil || string(after.Data["mode"]) != "fast" || after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Fatalf("dry runs changed the object: %+v %v", after, err)
	}
	if _, err := s.Get(ctx, "configmaps", "kubeflow", "other"); err == nil {
		t.Fatal("a dry-run create stored the object")
	}
	// And the create's field manager is kubectl's, not unknown.
	must("create", "configmap", "third", "--from-literal=a=b")
	if o, _ := s.Get(ctx, "configmaps", "kubeflow", "third"); !owns(o, "kubectl-create", "a") {
		t.Fatalf("create's managedFields: %v", managers(o))
	}
	req, _ := http.NewRequest(http.MethodDelete, url+"/api/v1/namespaces/kubeflow/configmaps/app?dryRun=Some", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("dryRun=Some: %d", resp.StatusCode)
	}
}

// FuzzDeleteOptions: any DELETE body is read or refused, never a panic; a dry run is
// reported only when the body asks for one.
func FuzzDeleteOptions(f *testing.F) {
	f.Add([]byte(`{"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"],"propagationPolicy":"Background"}`))
	f.Add([]byte(`{"dryRun":["Some"]}`))
	f.Add([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x06DeleteOptions\x12\x05\x2a\x03All"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		dry, err := k8s.ParseDeleteOptions(body)
		if err != nil || !dry {
			return
		}
		// A dry run is what the body says: "All" in dryRun (protobuf strings are raw bytes;
		// JSON ones may be escaped, so JSON is decoded again to check).
		if bytes.HasPrefix(body, []byte("k8s\x00")) {
			if !bytes.Contains(body, []byte("All")) {
				t.Fatalf("dry run read from protobuf %q", body)
			}
			return
		}
		var o struct{ DryRun []string }
		if json.Unmarshal(body, &o) != nil || len(o.DryRun) == 0 || o.DryRun[0] != "All" {
			t.Fatalf("dry run read from %q", body)
		}
	})
}

// TestKubectlClientToServerSideApply: an object made by client-side `kubectl apply` moves to
// `kubectl apply --server-side` without --force-conflicts, as on the API server: fields the
// last-applied annotation names and nobody changed since are taken over (kubectl then
// upgrades the managedFields, and a field the manifest dropped goes); a field another
// manager changed since is still a conflict; client-side apply works afterwards.
func TestKubectlClientToServerSideApply(t *testing.T) {
	s := newStore(t)
	url := serve(t, s)
	run, must := kubectlRunner(t, url)
	ctx := context.Background()
	dir := t.TempDir()
	cm := func(name, data string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+name+"\ndata:\n"+data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must("apply", "-f", cm("app", "  mode: fast\n  level: '1'\n"))
	must("apply", "--server-side", "-f", cm("app", "  mode: slow\n"))
	o, _ := s.Get(ctx, "configmaps", "kubeflow", "app")
	if string(o.Data["mode"]) != "slow" || o.Data["level"] != nil || !owns(o, "kubectl", "mode") {
		t.Fatalf("after moving to server-side apply: %q %v", o.Data, managers(o))
	}
	for _, m := range managers(o) {
		if m == "kubectl-client-side-apply/Update" {
			t.Fatalf("client-side apply still manages fields: %v", managers(o))
		}
	}
	if la := o.Metadata.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; !strings.Contains(la, `"mode":"slow"`) {
		t.Fatalf("last-applied annotation not kept in step: %s", la)
	}
	must("apply", "-f", cm("app", "  mode: slower\n"))
	if o, _ = s.Get(ctx, "configmaps", "kubeflow", "app"); string(o.Data["mode"]) != "slower" {
		t.Fatalf("client-side apply after server-side: %q", o.Data)
	}

	// A value changed by another manager since the client-side apply is not taken over.
	must("apply", "-f", cm("other", "  mode: fast\n"))
	must("patch", "configmap", "other", "--type", "merge", "-p", `{"data":{"mode":"patched"}}`)
	out, err := run("apply", "--server-side", "-f", cm("other", "  mode: slow\n"))
	if err == nil || !strings.Contains(out, `"kubectl-patch"`) {
		t.Fatalf("server-side apply over a patched field: %v\n%s", err, out)
	}
}

// TestConcurrentApplies: managers applying their own keys to one object at once all land
// (an apply that lost the race on resourceVersion reads again), each owning its key.
func TestConcurrentApplies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, _, err := s.Apply(ctx, "configmaps", "kubeflow", "shared", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n"), "init", false); err != nil {
		t.Fatal(err)
	}
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			m := string(rune('a' + i))
			body := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {key-" + m + ": v}\n"
			_, _, err := s.Apply(ctx, "configmaps", "kubeflow", "shared", []byte(body), "manager-"+m, false)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	o, err := s.Get(ctx, "configmaps", "kubeflow", "shared")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := string(rune('a' + i))
		if string(o.Data["key-"+m]) != "v" || !owns(o, "manager-"+m, "key-"+m) {
			t.Errorf("key-%s: %q, managers %v", m, o.Data, managers(o))
		}
	}
}
