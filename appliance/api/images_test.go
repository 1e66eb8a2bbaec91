package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	rt "github.com/kfp-box/kfp-box/runtime"
)

// fakeImages is a hand-written ImageStore whose pull reports the given progress, then waits
// for release (so a test can see lines arrive while the pull still runs).
type fakeImages struct {
	steps   [][2]int64
	release chan struct{}
	err     error
}

func (f *fakeImages) Images(context.Context) ([]rt.Image, error) { return nil, nil }
func (f *fakeImages) ImportImages(context.Context, io.Reader, string) ([]string, error) {
	return nil, nil
}
func (f *fakeImages) RemoveImage(context.Context, string) error { return nil }
func (f *fakeImages) PullImage(ctx context.Context, ref string, progress func(done, total int64)) (string, error) {
	for _, s := range f.steps {
		if progress != nil {
			progress(s[0], s[1])
		}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if f.err != nil {
		return "", f.err
	}
	return "docker.io/library/" + ref, nil
}

func pullRequest(t *testing.T, a *testAPI, ref string, stream bool) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+"/images:pull", strings.NewReader(`{"ref":"`+ref+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", PullStreamType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestPullImageStream: with Accept: application/x-ndjson the pull's byte progress reaches
// the client while the pull still runs, repeated values once, then the image's name; a
// failed pull ends with KFP's error code and message; without the header the answer is the
// single JSON object it always was.
func TestPullImageStream(t *testing.T) {
	imgs := &fakeImages{steps: [][2]int64{{0, 100}, {40, 100}, {40, 100}, {100, 250}}, release: make(chan struct{})}
	a := newTestAPIWith(t, Deps{Images: imgs})
	resp := pullRequest(t, a, "busybox:1", true)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != PullStreamType {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() PullEvent {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended early: %v", sc.Err())
		}
		var ev PullEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		return ev
	}
	// Every progress line arrives before the pull is released: the answer is streamed.
	var got []string
	for i := 0; i < 4; i++ {
		ev := next()
		if ev.Progress == nil || ev.Name != "" || ev.Error != nil {
			t.Fatalf("line %d = %+v, want progress", i, ev)
		}
		got = append(got, fmt.Sprintf("%d/%d", ev.Progress.Done, ev.Progress.Total))
	}
	if strings.Join(got, " ") != "0/0 0/100 40/100 100/250" {
		t.Errorf("progress = %v", got)
	}
	close(imgs.release)
	if ev := next(); ev.Name != "docker.io/library/busybox:1" || ev.Progress != nil || ev.Error != nil {
		t.Errorf("last line = %+v, want the name", ev)
	}
	if sc.Scan() {
		t.Errorf("a line after the name: %q", sc.Text())
	}

	failing := &fakeImages{steps: [][2]int64{{5, 10}}, err: fmt.Errorf("pull %q: not found: %w", "nope:1", rt.ErrImageNotFound)}
	a = newTestAPIWith(t, Deps{Images: failing})
	body, _ := io.ReadAll(pullRequest(t, a, "nope:1", true).Body)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	var last PullEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Error == nil {
		t.Fatalf("failed pull's last line %q: %v", lines[len(lines)-1], err)
	}
	if last.Error.Code != codeNotFound || last.Error.Status != http.StatusNotFound || !strings.Contains(last.Error.Message, "image not present") {
		t.Errorf("error line = %+v, want code %d and the cause", last.Error, codeNotFound)
	}

	plain := pullRequest(t, newTestAPIWith(t, Deps{Images: &fakeImages{steps: [][2]int64{{1, 2}}}}), "busybox:1", false)
	var out map[string]any
	if err := json.NewDecoder(plain.Body).Decode(&out); err != nil || plain.StatusCode != 200 || out["name"] != "docker.io/library/busybox:1" || len(out) != 1 {
		t.Errorf("plain pull: %d %v %v", plain.StatusCode, out, err)
	}
	// Bad input is still answered before any streaming, as a 400 in KFP's shape.
	bad := pullRequest(t, a, "Not A Ref", true)
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("bad ref: status %d, want 400", bad.StatusCode)
	}
}
