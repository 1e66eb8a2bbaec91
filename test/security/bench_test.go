package security

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkLoad50Clients puts 50 concurrent clients on a real box for a fixed time, once
// with tokens required and once with --auth none, each client listing runs and experiments
// over keep-alive connections. ns/op is the median latency; p99-ns and errors are reported
// beside it (make bench shows each as a row).
func BenchmarkLoad50Clients(b *testing.B) {
	for _, mode := range []string{"token", "none"} {
		b.Run(mode, func(b *testing.B) {
			bx := startBench(b, "--auth", mode)
			d := 5 * time.Second
			if s := os.Getenv("KFPBOX_BENCH_LOAD_SECONDS"); s != "" {
				if n, err := strconv.Atoi(s); err == nil {
					d = time.Duration(n) * time.Second
				}
			}
			lat, errs := load(bx, 50, d)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) == 0 {
				b.Fatalf("no request succeeded (%d errors)", errs)
			}
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) }
			b.ReportMetric(p(0.50), "ns/op")
			b.ReportMetric(p(0.99), "p99-ns")
			b.ReportMetric(float64(errs), "errors")
			b.ReportMetric(float64(len(lat))/d.Seconds(), "req/s")
		})
	}
}

func load(bx *box, clients int, d time.Duration) ([]time.Duration, int) {
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	paths := []string{"/apis/v2beta1/runs?page_size=20", "/apis/v2beta1/experiments?page_size=10", "/apis/v2beta1/pipelines"}
	end := time.Now().Add(d)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for i := 0; time.Now().Before(end); i++ {
				req, _ := http.NewRequest("GET", bx.url+paths[(c+i)%len(paths)], nil)
				if bx.token != "" {
					req.Header.Set("Authorization", "Bearer "+bx.token)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			errs += bad
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	tr.CloseIdleConnections()
	return all, errs
}

// BenchmarkBodyRSS is the box's peak resident memory (VmHWM of the serve process) while ten
// clients each send a maximum-size (32 MiB) JSON body at once, against the same box's peak
// after it served small requests only. Reported in bytes as ns/op so that the table shows
// the ratio; rss-MB beside it.
func BenchmarkBodyRSS(b *testing.B) {
	bx := startBench(b)
	small := func() {
		for i := 0; i < 20; i++ {
			st, _ := bx.req("GET", "/apis/v2beta1/runs", nil, nil, true)
			if st != 200 {
				b.Fatalf("GET runs: HTTP %d", st)
			}
		}
	}
	small()
	b.Run("idle", func(b *testing.B) {
		small()
		rss := vmHWM(b, bx.pid)
		b.ReportMetric(float64(rss), "ns/op")
		b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
	})
	b.Run("ten-max-bodies", func(b *testing.B) {
		var wg sync.WaitGroup
		codes := make([]int, 10)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req, _ := http.NewRequest("POST", bx.url+"/apis/v2beta1/runs", bigRunBody(32<<20-1024))
				req.ContentLength = 32<<20 - 1024
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+bx.token)
				resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}(i)
		}
		wg.Wait()
		for i, c := range codes {
			if c != 400 {
				b.Fatalf("body %d: HTTP %d", i, c)
			}
		}
		rss := vmHWM(b, bx.pid)
		b.ReportMetric(float64(rss), "ns/op")
		b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
	})
}

// bigRunBody streams a run whose pipeline spec holds n bytes, without holding them.
func bigRunBody(n int) io.Reader {
	head := `{"display_name":"big","pipeline_spec":{"pipelineInfo":{"name":"big","description":"`
	// The schema version comes last and is wrong: the whole body is read, decoded and parsed
	// before the 400, and nothing is stored.
	tail := `"},"root":{"dag":{"tasks":{}}},"schemaVersion":"0.0.9"}}`
	fill := n - len(head) - len(tail)
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader('x'), int64(fill)), strings.NewReader(tail))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(b testing.TB, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
