package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/runarchive"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

type member struct {
	name string
	data []byte
	typ  byte
}

func archiveOf(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: 0o600, Size: int64(len(m.data))}
		if typ != tar.TypeReg {
			h.Size, h.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(m.data)
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

// manifestJSON is a valid manifest of a finished one-task run with one file artifact;
// change adjusts it.
func manifestJSON(t testing.TB, change func(m map[string]any)) []byte {
	t.Helper()
	spec := readTestdataTB(t, "params.yaml")
	p, err := specFromYAML(spec)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"format":        runarchive.Format,
		"exported_at":   "2026-01-01T00:00:00Z",
		"origin":        map[string]any{"server": "http://origin", "run_id": "r-1"},
		"pipeline_spec": json.RawMessage(p),
		"run": map[string]any{"run_id": "r-1", "display_name": "old run", "state": "SUCCEEDED",
			"runtime_config": map[string]any{"parameters": map[string]any{"msg": "x"}},
			"run_details": map[string]any{"task_details": []any{
				map[string]any{"task_id": "7", "display_name": "say", "state": "SUCCEEDED", "kind": "CONTAINER",
					"outputs": map[string]any{"out": map[string]any{"artifact_ids": []any{"3"}}}},
			}}},
		"artifacts": []any{map[string]any{"artifact_id": "3", "name": "out", "uri": "minio://mlpipeline/v2/artifacts/say-things/r-1/say/u/out", "file": "artifacts/3"}},
		"logs":      []any{map[string]any{"task_id": "7", "file": "logs/7.log"}},
	}
	if change != nil {
		change(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func readTestdataTB(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importAPI(t testing.TB) (*testAPI, string) {
	t.Helper()
	objDir := t.TempDir()
	store, err := local.New(objDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newTestAPIWith(t, Deps{Objects: store, LogDir: t.TempDir()}), objDir
}

// TestImportRefusesBadArchives: each broken archive is a 400 in KFP's error shape, and
// nothing stays behind: no run, no object.
func TestImportRefusesBadArchives(t *testing.T) {
	good := manifestJSON(t, nil)
	for name, body := range map[string][]byte{
		"not gzip":            []byte("plain text"),
		"manifest not first":  archiveOf(t, member{name: "logs/7.log", data: []byte("x")}, member{name: "manifest.json", data: good}),
		"manifest not JSON":   archiveOf(t, member{name: "manifest.json", data: []byte("{")}),
		"other format":        archiveOf(t, member{name: "manifest.json", data: manifestJSON(t, func(m map[string]any) { m["format"] = "zip/v9" })}),
		"unfinished run":      archiveOf(t, member{name: "manifest.json", data: manifestJSON(t, func(m map[string]any) { m["run"].(map[string]any)["state"] = "RUNNING" })}),
		"bad spec":            archiveOf(t, member{name: "manifest.json", data: manifestJSON(t, func(m map[string]any) { m["pipeline_spec"] = map[string]any{"x": 1} })}),
		"missing file":        archiveOf(t, member{name: "manifest.json", data: good}),
		"unknown member":      archiveOf(t, member{name: "manifest.json", data: good}, member{name: "artifacts/3", data: []byte("a")}, member{name: "../../etc/x", data: []byte("x")}),
		"traversal in folder": archiveOf(t, member{name: "manifest.json", data: good}, member{name: "artifacts/3/../../x", data: []byte("x")}),
		"symlink member":      archiveOf(t, member{name: "manifest.json", data: good}, member{name: "artifacts/3", typ: tar.TypeSymlink}),
		"log of no task":      archiveOf(t, member{name: "manifest.json", data: good}, member{name: "artifacts/3", data: []byte("a")}, member{name: "logs/99.log", data: []byte("x")}),
		"unsafe artifact id":  archiveOf(t, member{name: "manifest.json", data: manifestJSON(t, func(m map[string]any) { m["artifacts"].([]any)[0].(map[string]any)["artifact_id"] = "../x" })}),
	} {
		t.Run(name, func(t *testing.T) {
			a, objDir := importAPI(t)
			status, out := a.upload(`/runs:import`, "run.tar.gz", body)
			if status != 400 || out["message"] == nil {
				t.Fatalf("HTTP %d %v, want 400 with a message", status, out)
			}
			if _, err := a.meta.GetRun(context.Background(), "r-1"); err == nil {
				t.Fatal("a refused import left a run")
			}
			var files []string
			_ = filepath.Walk(objDir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 0 {
				t.Fatalf("a refused import left objects: %v", files)
			}
		})
	}
}

// TestImportStoresAFinishedRun imports a minimal archive: the run keeps its id, is marked
// imported, never reaches the engine, and serves its artifact and log.
func TestImportStoresAFinishedRun(t *testing.T) {
	a, _ := importAPI(t)
	body := archiveOf(t, member{name: "manifest.json", data: manifestJSON(t, nil)},
		member{name: "artifacts/3", data: []byte("artifact bytes")}, member{name: "logs/7.log", data: []byte("2026-01-01T00:00:00Z stdout hello\n")})
	status, out := a.upload(`/runs:import`, "run.tar.gz", body)
	if status != 200 || out["run_id"] != "r-1" || out["state"] != "SUCCEEDED" {
		t.Fatalf("HTTP %d %v", status, out)
	}
	if o, _ := out["imported_from"].(map[string]any); o["server"] != "http://origin" || o["run_id"] != "r-1" {
		t.Fatalf("imported_from = %v", out["imported_from"])
	}
	if sub, _, _ := a.engine.calls(); len(sub) != 0 {
		t.Fatalf("the engine was handed %v", sub)
	}
	r, err := a.meta.GetRun(context.Background(), "r-1")
	if err != nil || r.ImportedFrom == nil || r.State != meta.RunSucceeded {
		t.Fatalf("stored run %+v, %v", r, err)
	}
	status, arts := a.do("GET", "/runs/r-1/artifacts", nil)
	list := arts["artifacts"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("artifacts: %d %v", status, arts)
	}
	id := list[0].(map[string]any)["artifact_id"].(string)
	resp, err := httpGet(a.url + "/artifacts/" + id + "/download")
	if err != nil || resp != "artifact bytes" {
		t.Fatalf("download %q, %v", resp, err)
	}
	status, again := a.upload(`/runs:import`, "run.tar.gz", body)
	if status != 409 {
		t.Fatalf("second import: %d %v", status, again)
	}
	status, copied := a.upload(`/runs:import?new_id=true`, "run.tar.gz", body)
	if status != 200 || copied["run_id"] == "r-1" {
		t.Fatalf("import with new_id: %d %v", status, copied)
	}
}

// FuzzRunImport posts arbitrary archives: never a panic or a 5xx, and a refused one leaves
// no run.
func FuzzRunImport(f *testing.F) {
	f.Add(archiveOf(f, member{name: "manifest.json", data: manifestJSON(f, nil)}, member{name: "artifacts/3", data: []byte("a")}))
	f.Add(archiveOf(f, member{name: "manifest.json", data: []byte(`{"format":"kfp-box/run-export/v1"}`)}))
	f.Add([]byte{0x1f, 0x8b})
	a, _ := importAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("uploadfile", "run.tar.gz")
		_, _ = fw.Write(body)
		_ = mw.Close()
		resp, err := http.Post(a.url+"/runs:import?new_id=true", mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
		}
	})
}

func specFromYAML(y []byte) (json.RawMessage, error) {
	p, err := spec.Parse(y)
	if err != nil {
		return nil, err
	}
	return p.StoredJSON(), nil
}

func httpGet(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
