package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/api"
)

func pullAnswer(contentType, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

// TestReadPullStream: progress lines drive the bar, the name ends the stream, a streamed
// error keeps the status (and so the exit code) the same failure has without streaming, a
// stream cut short is an error, and a box that answers one JSON object still works.
func TestReadPullStream(t *testing.T) {
	var seen []string
	progress := func(done, total int64) { seen = append(seen, fmt.Sprintf("%d/%d", done, total)) }
	name, err := readPullStream(pullAnswer(api.PullStreamType,
		`{"progress":{"done":0,"total":0}}`+"\n"+`{"progress":{"done":10,"total":40}}`+"\n"+`{"name":"docker.io/library/bb:1"}`+"\n"), progress)
	if err != nil || name != "docker.io/library/bb:1" || strings.Join(seen, " ") != "0/0 10/40" {
		t.Fatalf("stream: %q, %v, progress %v", name, err, seen)
	}

	_, err = readPullStream(pullAnswer(api.PullStreamType,
		`{"progress":{"done":1,"total":2}}`+"\n"+`{"error":{"code":5,"message":"pull x: image not present","http_status":404}}`+"\n"), nil)
	if exitCode(apiExit(err)) != 2 || !strings.Contains(err.Error(), "image not present") {
		t.Errorf("streamed 404: %v (exit %d), want exit 2", err, exitCode(apiExit(err)))
	}
	_, err = readPullStream(pullAnswer(api.PullStreamType, `{"error":{"code":13,"message":"pull x: registry down","http_status":500}}`), nil)
	if exitCode(apiExit(err)) != 1 || !strings.Contains(err.Error(), "registry down") {
		t.Errorf("streamed 500: %v (exit %d), want exit 1", err, exitCode(apiExit(err)))
	}
	if _, err := readPullStream(pullAnswer(api.PullStreamType, `{"progress":{"done":1,"total":2}}`+"\n"), nil); err == nil || !strings.Contains(err.Error(), "ended without a result") {
		t.Errorf("cut stream: %v", err)
	}
	if _, err := readPullStream(pullAnswer(api.PullStreamType, `{"progress":`), nil); err == nil {
		t.Error("a broken line was accepted")
	}

	name, err = readPullStream(pullAnswer("application/json", `{"name":"docker.io/library/bb:1"}`), progress)
	if err != nil || name != "docker.io/library/bb:1" {
		t.Errorf("plain answer: %q, %v", name, err)
	}
}
