package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	out := `goos: linux
BenchmarkList/box-2         	     100	  1500000 ns/op	  12.5 ms/page
BenchmarkList/raw           	      10	 30000000 ns/op
PASS`
	res := parse(strings.NewReader(out))
	if got := res["BenchmarkList/box"].nsPerOp; got != 1500000 {
		t.Fatalf("box = %v", got)
	}
	if got := res["BenchmarkList/box"].extra["ms/page"]; got != 12.5 {
		t.Fatalf("extra = %v", got)
	}
	if got := res["BenchmarkList/raw"].nsPerOp; got != 30000000 {
		t.Fatalf("raw = %v", got)
	}
	if _, ok := res["goos:"]; ok {
		t.Fatal("parsed a non-benchmark line")
	}
}

func TestHuman(t *testing.T) {
	for ns, want := range map[float64]string{0: "—", 999: "999 ns", 1500: "1.5 µs", 2.5e6: "2.50 ms", 3e9: "3.00 s"} {
		if got := human(ns); got != want {
			t.Errorf("human(%v) = %q, want %q", ns, got, want)
		}
	}
}

func TestMetricRows(t *testing.T) {
	res := parse(strings.NewReader("BenchmarkLoad/token-2 1 5000000 ns/op 0 errors 31000000 p99-ns 290.5 rss-MB\n"))
	r := res["BenchmarkLoad/token"]
	for metric, want := range map[string]string{"p99-ns": "31.00 ms", "rss-MB": "290.5 MB", "errors": "0 errors"} {
		if got := show(result{nsPerOp: r.extra[metric], unit: metric}); got != want {
			t.Fatalf("show %s = %q, want %q", metric, got, want)
		}
	}
}
