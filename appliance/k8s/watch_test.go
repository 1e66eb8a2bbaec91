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
	"github.com/kfp-box/kfp-box/storage/meta"
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

// TestWatchPodsBurst: a run's thousands of task records written in one commit (more than
// the store's watch buffer) reach a pod watch as one ADDED per pod, and the watch goes on:
// when the box's subscription to the store falls behind, pod watchers list and compare
// instead of ending.
func TestWatchPodsBurst(t *testing.T) {
	const n = 3000
	db, m, execs := podStore(t, n, false)
	s := k8s.NewStore(db)
	s.ServePods(k8s.PodSource{Meta: m})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.StartWatch(ctx); err != nil {
		t.Fatal(err)
	}
	base := serveTB(t, s)
	resp, err := http.Get(base + "/api/v1/namespaces/kubeflow/pods?watch=1&resourceVersion=" + strconv.FormatInt(s.Revision(), 10))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan watchLine, n+16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l watchLine
			json.Unmarshal(sc.Bytes(), &l)
			lines <- l
		}
		close(lines)
	}()
	if err := m.PutExecutions(ctx, execs[1:]...); err != nil {
		t.Fatal(err)
	}
	added := map[string]bool{}
	for len(added) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the watch ended after %d pods", len(added))
			}
			if l.Type != "ADDED" && l.Type != "MODIFIED" {
				t.Fatalf("event %s %s during the burst", l.Type, l.Object.Metadata.Name)
			}
			added[l.Object.Metadata.Name] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d pods seen", len(added), n)
		}
	}
	// The watch is still live: a later write arrives.
	x := *execs[1]
	x.State = meta.ExecFailed
	x.StateHistory = append(x.StateHistory[:3:3], meta.StateEvent{UpdateTime: x.FinishedAt, State: meta.ExecFailed, Error: &meta.Status{Message: "exit code 3"}})
	if err := m.PutExecutions(ctx, &x); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the watch ended")
			}
			if l.Type == "MODIFIED" && strings.HasSuffix(l.Object.Metadata.Name, "-"+x.ID+"-0") {
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no event for the later write")
		}
	}
}
