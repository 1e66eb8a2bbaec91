package k8s_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/k8s"
)

type watchLine struct {
	Type   string `json:"type"`
	Object struct {
		Kind     string `json:"kind"`
		Code     int    `json:"code"`
		Metadata struct {
			Name            string `json:"name"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	} `json:"object"`
}

// TestWatchSecrets: a watch from a list's resourceVersion sees every later write in order
// (ADDED, MODIFIED, DELETED) from the store's own watch; a watch from before the box began
// watching is 410 Gone with reason Expired; a watch without resourceVersion starts with the
// objects that exist.
func TestWatchSecrets(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, name := range []string{"gone", "before"} {
		if _, err := s.Create(ctx, "secrets", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, "secrets", "kubeflow", "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartWatch(ctx); err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	_, rev, err := s.List(ctx, "secrets", "kubeflow")
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(base + "/api/v1/namespaces/kubeflow/secrets?watch=1&resourceVersion=1")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusGone {
		resp.Body.Close()
		t.Fatalf("watch from revision 1 (the ring starts at %d): HTTP %d, want 410", s.Revision(), resp.StatusCode)
	}
	var st watchLine
	json.NewDecoder(resp.Body).Decode(&st.Object)
	resp.Body.Close()
	if st.Object.Kind != "Status" || st.Object.Code != 410 {
		t.Fatalf("410 body: %+v", st.Object)
	}

	// Writes after the list's revision but before the watch begins are replayed.
	if _, err := s.Create(ctx, "secrets", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: "a"}, Data: map[string][]byte{"k": []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"watch": {"1"}, "resourceVersion": {strconv.FormatInt(rev, 10)}, "allowWatchBookmarks": {"true"}, "timeoutSeconds": {"30"}}
	resp, err = http.Get(base + "/api/v1/namespaces/kubeflow/secrets?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("watch: HTTP %d", resp.StatusCode)
	}
	lines := make(chan watchLine, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l watchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("watch line %q: %v", sc.Text(), err)
			}
			lines <- l
		}
		close(lines)
	}()
	next := func() watchLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event in 10s")
		}
		return watchLine{}
	}
	if l := next(); l.Type != "ADDED" || l.Object.Metadata.Name != "a" || l.Object.Data["k"] != "MQ==" {
		t.Fatalf("first event = %+v", l)
	}
	o, err := s.Get(ctx, "secrets", "kubeflow", "a")
	if err != nil {
		t.Fatal(err)
	}
	o.Data["k"] = []byte("2")
	if _, err := s.Update(ctx, "secrets", "kubeflow", "a", o); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "configmaps", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: "not-a-secret"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "secrets", "kubeflow", "a"); err != nil {
		t.Fatal(err)
	}
	m := next()
	d := next()
	if m.Type != "MODIFIED" || m.Object.Data["k"] != "Mg==" || d.Type != "DELETED" || d.Object.Metadata.Name != "a" {
		t.Fatalf("events after update and delete = %+v, %+v", m, d)
	}
	mr, _ := strconv.Atoi(m.Object.Metadata.ResourceVersion)
	dr, _ := strconv.Atoi(d.Object.Metadata.ResourceVersion)
	if mr <= int(rev) || dr <= mr {
		t.Fatalf("resourceVersions not increasing: list %d, modified %d, deleted %d", rev, mr, dr)
	}

	// No resourceVersion: the existing objects first.
	resp2, err := http.Get(base + "/api/v1/secrets?watch=true&timeoutSeconds=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc := bufio.NewScanner(resp2.Body)
	var names []string
	for sc.Scan() {
		var l watchLine
		json.Unmarshal(sc.Bytes(), &l)
		names = append(names, l.Type+" "+l.Object.Metadata.Name)
	}
	if strings.Join(names, ",") != "ADDED before" {
		t.Fatalf("initial events = %v, want [ADDED before] and the end after timeoutSeconds", names)
	}
}
