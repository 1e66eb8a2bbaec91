package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// crashChildEnv switches the test binary into a child API server over the bbolt file it
// names (see TestMain); the crash test runs it as a separate process so it can SIGKILL it.
const crashChildEnv = "KFPBOX_TEST_CRASH_CHILD_DB"

func TestMain(m *testing.M) {
	if db := os.Getenv(crashChildEnv); db != "" {
		os.Exit(serveCrashChild(db))
	}
	os.Exit(m.Run())
}

// serveCrashChild serves the API over db with fsync on, printing its address on stdout.
func serveCrashChild(db string) int {
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: db})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	m, err := meta.Open(ctx, kvs, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	fmt.Printf("LISTENING %s\n", ln.Addr())
	_ = http.Serve(ln, New(Deps{Meta: m}).Handler())
	return 0
}

// startCrashChild starts the child server and returns it with its base URL.
func startCrashChild(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+db)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if a, ok := strings.CutPrefix(s.Text(), "LISTENING "); ok {
				line <- a
			}
		}
		close(line)
	}()
	select {
	case addr, ok := <-line:
		if !ok {
			t.Fatal("child server exited before listening")
		}
		return cmd, "http://" + addr + "/apis/v2beta1"
	case <-time.After(30 * time.Second):
		t.Fatal("child server did not start within 30s")
	}
	return nil, ""
}

// TestAcknowledgedWritesSurviveSIGKILL streams experiment and run creations at a server process,
// SIGKILLs it in the middle of the stream, restarts it on the same bbolt file and checks that
// every write the server acknowledged (HTTP 200) is there.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes; runs without -short")
	}
	db := t.TempDir() + "/meta.db"
	cmd, base := startCrashChild(t, db)

	client := &http.Client{Timeout: 10 * time.Second}
	ps, _ := specJSON(t, "params.yaml")
	var mu sync.Mutex
	acked := map[string]string{} // "/experiments/<id>" or "/runs/<id>" -> display name
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	var wg sync.WaitGroup
	const writers = 4
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				// Half the writers create experiments, half create runs.
				path, idKey := "/experiments", "experiment_id"
				req := map[string]any{"display_name": name}
				if w%2 == 1 {
					path, idKey = "/runs", "run_id"
					req["pipeline_spec"] = ps
					req["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": name}}
				}
				body, _ := json.Marshal(req)
				resp, err := client.Post(base+path, "application/json", bytes.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				var e map[string]any
				if json.Unmarshal(raw, &e) != nil {
					continue
				}
				mu.Lock()
				acked[path+"/"+e[idKey].(string)] = name
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for ackedCount() < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s", ackedCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wg.Wait()
	n := ackedCount()

	_, base = startCrashChild(t, db)
	for key, name := range acked {
		resp, err := client.Get(base + key)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 200 || e["display_name"] != name {
			t.Fatalf("acknowledged write %s (%s) lost after SIGKILL: %d %v", key, name, resp.StatusCode, e)
		}
	}
	// The restarted server still writes and lists.
	resp, err := client.Get(base + "/experiments?page_size=1")
	if err != nil {
		t.Fatal(err)
	}
	var l map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	if total, _ := l["total_size"].(float64); total < 1 {
		t.Fatalf("total_size %v after restart", l["total_size"])
	}
	t.Logf("%d acknowledged writes survived SIGKILL", n)
}
