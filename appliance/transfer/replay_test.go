package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/lint"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// recording is testdata/kfp-cluster-*.json.
type recording struct {
	Token     string     `json:"token"`
	Namespace string     `json:"namespace"`
	Exchanges []exchange `json:"exchanges"`
}

type exchange struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query"`
	// Body is the JSON body push must send; Upload names the source spec an upload must carry.
	Body   json.RawMessage `json:"body"`
	Upload string          `json:"upload"`
	Answer json.RawMessage `json:"answer"`
}

// replayServer answers the recorded exchanges in order and records every difference between
// a request and the recording, and between a request and the SDK's shapes.
type replayServer struct {
	t     *testing.T
	rec   recording
	sdk   *sdkShapes
	specs map[string]string // upload name -> digest
	mu    sync.Mutex
	next  int
	diffs []string
}

func (rs *replayServer) fail(format string, args ...any) {
	rs.diffs = append(rs.diffs, fmt.Sprintf(format, args...))
}

func (rs *replayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.next >= len(rs.rec.Exchanges) {
		rs.fail("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, `{"code":12,"message":"not recorded"}`, http.StatusNotImplemented)
		return
	}
	ex := rs.rec.Exchanges[rs.next]
	rs.next++
	at := fmt.Sprintf("request %d (%s %s)", rs.next, ex.Method, ex.Path)
	if r.Method != ex.Method || r.URL.Path != ex.Path {
		rs.fail("%s: got %s %s", at, r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+rs.rec.Token {
		rs.fail("%s: Authorization %q, want the bearer token", at, got)
	}
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = strings.Join(v, ",")
	}
	if len(q) > 0 || len(ex.Query) > 0 {
		if !reflect.DeepEqual(q, ex.Query) {
			rs.fail("%s: query %v, recorded %v", at, q, ex.Query)
		}
	}
	route := rs.sdk.route(r.Method, r.URL.Path)
	if route == nil {
		rs.fail("%s: the SDK's client has no such route", at)
	} else {
		for k := range q {
			if !route.query[k] {
				rs.fail("%s: query parameter %q is not one the SDK's %s sends", at, k, route.name)
			}
		}
	}
	body, _ := io.ReadAll(r.Body)
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ex.Upload != "":
		rs.checkUpload(at, route, ct, params, body, ex.Upload)
	case len(ex.Body) > 0:
		if ct != "application/json" {
			rs.fail("%s: content type %q, want application/json", at, ct)
		}
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			rs.fail("%s: body is not JSON: %v", at, err)
		}
		_ = json.Unmarshal(ex.Body, &want)
		rs.diffs = append(rs.diffs, diffJSON(at+" body", got, want)...)
		if route != nil {
			if route.body == "" {
				rs.fail("%s: the SDK's %s sends no body", at, route.name)
			} else {
				rs.diffs = append(rs.diffs, rs.sdk.checkValue(at+" body", route.body, got)...)
			}
		}
	case len(body) > 0:
		rs.fail("%s: unexpected body %q", at, body)
	}
	answer := bytes.ReplaceAll(ex.Answer, []byte(`"SPEC_V1"`), []byte(rs.specs["v1-json"]))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func (rs *replayServer) checkUpload(at string, route *sdkRoute, ct string, params map[string]string, body []byte, name string) {
	if ct != "multipart/form-data" {
		rs.fail("%s: content type %q, want multipart/form-data", at, ct)
		return
	}
	req := &http.Request{Header: http.Header{"Content-Type": {"multipart/form-data; boundary=" + params["boundary"]}}, Body: io.NopCloser(bytes.NewReader(body))}
	mr, err := req.MultipartReader()
	if err != nil {
		rs.fail("%s: %v", at, err)
		return
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if route != nil && !route.files[p.FormName()] {
			rs.fail("%s: multipart field %q is not the SDK's upload field", at, p.FormName())
		}
		data, _ := io.ReadAll(p)
		pl, err := specJSON(data)
		if err != nil {
			rs.fail("%s: the uploaded package does not parse: %v", at, err)
			continue
		}
		if d, _ := client.SpecDigest(pl); d != rs.specs[name] {
			rs.fail("%s: uploaded spec digest %s, want %s's %s", at, d, name, rs.specs[name])
		}
	}
}

// diffJSON lists the fields where got and want differ.
func diffJSON(at string, got, want any) []string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if !gok || !wok {
		if !reflect.DeepEqual(got, want) {
			return []string{fmt.Sprintf("%s: %v, recorded %v", at, got, want)}
		}
		return nil
	}
	keys := map[string]bool{}
	for k := range gm {
		keys[k] = true
	}
	for k := range wm {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		g, inG := gm[k]
		w, inW := wm[k]
		switch {
		case !inG:
			out = append(out, fmt.Sprintf("%s.%s: missing (recorded %v)", at, k, w))
		case !inW:
			out = append(out, fmt.Sprintf("%s.%s: %v is sent but not recorded", at, k, g))
		default:
			out = append(out, diffJSON(at+"."+k, g, w)...)
		}
	}
	return out
}

// sourceBox is the box's real API over a bbolt file (no engine: nothing runs).
func sourceBox(t *testing.T) *client.Client {
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
	srv := httptest.NewServer(api.New(api.Deps{Meta: m}).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(client.Options{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPushReplaysAgainstMultiUserCluster pushes from a box to recorded answers of a
// multi-user KFP cluster (namespace team-a, a bearer token), checking every request against
// the recording field by field and against the SDK's generated client: route, query
// parameters, upload field, and each body field's name and type.
func TestPushReplaysAgainstMultiUserCluster(t *testing.T) {
	sdk := loadSDKShapes(t)
	raw, err := os.ReadFile("testdata/kfp-cluster-multiuser.json")
	if err != nil {
		t.Fatal(err)
	}
	rs := &replayServer{t: t, sdk: sdk, specs: map[string]string{}}
	if err := json.Unmarshal(raw, &rs.rec); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := sourceBox(t)
	v1, v2, other := variant(t, "one"), variant(t, "two"), variant(t, "other")
	p1, err := src.UploadPipeline(ctx, "say-things", "", "says things", v1)
	if err != nil {
		t.Fatal(err)
	}
	ver2, err := src.UploadPipelineVersion(ctx, p1.PipelineID, "v2", "", "", v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.UploadPipeline(ctx, "other", "", "", other); err != nil {
		t.Fatal(err)
	}
	exp, err := src.CreateExperiment(ctx, "nightly-exp", "the nightly runs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateRecurringRun(ctx, &client.RecurringRun{
		DisplayName: "nightly", ExperimentID: exp.ExperimentID, Mode: "ENABLE", MaxConcurrency: 1,
		PipelineVersionReference: &client.VersionRef{PipelineID: p1.PipelineID, PipelineVersionID: ver2.PipelineVersionID},
		RuntimeConfig:            &client.RuntimeConfig{Parameters: map[string]any{"msg": "hi"}},
		Trigger:                  &client.Trigger{CronSchedule: &client.CronSchedule{Cron: "0 0 3 * * *"}},
	}); err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string][]byte{"v1": v1, "v2": v2, "other": other} {
		js, err := specJSON(pkg)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := client.SpecDigest(js)
		rs.specs[name] = d
		if name == "v1" {
			rs.specs["v1-json"] = string(js)
		}
	}

	cluster := httptest.NewServer(rs)
	defer cluster.Close()
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte(rs.rec.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst, err := client.New(client.Options{Server: cluster.URL, TokenFile: tf, Namespace: rs.rec.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Copy(ctx, src, dst, Options{RecurringRuns: true, Lint: true, Target: lint.DefaultTarget, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("push:\n%s", progress.String())
	for _, d := range rs.diffs {
		t.Error(d)
	}
	if rs.next != len(rs.rec.Exchanges) {
		t.Errorf("push made %d of the %d recorded requests", rs.next, len(rs.rec.Exchanges))
	}
	if rep.Failed() != 0 || rep.Count(KindVersion, Created) != 2 || rep.Count(KindVersion, Unchanged) != 1 ||
		rep.Count(KindRecurringRun, Created) != 1 || rep.Count(KindExperiment, Created) != 1 || rep.Count(KindPipeline, Created) != 1 {
		t.Errorf("report: %+v", rep.Items)
	}
}
