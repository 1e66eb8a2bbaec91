// Command benchtable turns `go test -bench` output into kfp-box's benchmark table: one row per
// figure, the box's number next to its raw baseline measured in the same run, and their ratio.
//
// Rows come from a spec file, one row a line: LABEL | BOX BENCHMARK | BASELINE BENCHMARK | GOAL.
// Benchmark names are matched exactly against the name go test prints, without the -N suffix.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

type result struct {
	nsPerOp float64
	extra   map[string]float64 // custom metrics such as ms/page
	unit    string             // "" for ns/op; else how show renders the number
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parse reads go test output into results by benchmark name.
func parse(r io.Reader) map[string]result {
	out := map[string]result{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		res := result{extra: map[string]float64{}}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			if fields[i+1] == "ns/op" {
				res.nsPerOp = v
			} else {
				res.extra[fields[i+1]] = v
			}
		}
		out[m[1]] = res
	}
	return out
}

type row struct {
	label, box, raw, goal string
	per                   float64 // tasks per op: adds (box-raw)/per as overhead per task
}

func readSpec(path string) ([]row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "|")
		for len(p) < 5 {
			p = append(p, "")
		}
		r := row{label: strings.TrimSpace(p[0]), box: strings.TrimSpace(p[1]), raw: strings.TrimSpace(p[2]), goal: strings.TrimSpace(p[3])}
		if v := strings.TrimSpace(p[4]); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("row %q: tasks per op %q is not a positive number", r.label, v)
			}
			r.per = n
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// show renders a figure: durations for ns/op and *-ns metrics, MB for *-MB, else the number.
func show(r result) string {
	switch {
	case r.unit == "" || strings.HasSuffix(r.unit, "-ns"):
		return human(r.nsPerOp)
	case strings.HasSuffix(r.unit, "-MB"):
		return fmt.Sprintf("%.1f MB", r.nsPerOp)
	}
	return strconv.FormatFloat(r.nsPerOp, 'f', -1, 64) + " " + r.unit
}

func human(ns float64) string {
	switch {
	case ns <= 0:
		return "—"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func main() {
	specPath := flag.String("spec", "scripts/bench.rows", "row specification")
	flag.Parse()
	rows, err := readSpec(*specPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	res := parse(os.Stdin)
	// A benchmark named NAME:METRIC in the spec stands for that custom metric of NAME.
	for _, r := range rows {
		for _, name := range []string{r.box, r.raw} {
			base, metric, ok := strings.Cut(name, ":")
			if !ok {
				continue
			}
			if b, found := res[base]; found {
				if v, has := b.extra[metric]; has {
					res[name] = result{nsPerOp: v, extra: map[string]float64{}, unit: metric}
				}
			}
		}
	}
	fmt.Printf("| %-58s | %12s | %12s | %8s | %14s | %-28s |\n", "figure", "kfp-box", "baseline", "ratio", "overhead/task", "goal")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 60), strings.Repeat("-", 14), strings.Repeat("-", 14), strings.Repeat("-", 10), strings.Repeat("-", 16), strings.Repeat("-", 30))
	missing := 0
	for _, r := range rows {
		b, okb := res[r.box]
		base, okr := res[r.raw]
		ratio := "—"
		if okb && okr && base.nsPerOp > 0 && b.unit == base.unit {
			ratio = fmt.Sprintf("%.3f×", b.nsPerOp/base.nsPerOp)
		}
		bs, rs := "missing", "missing"
		if okb {
			bs = show(b)
		} else {
			missing++
		}
		if okr {
			rs = show(base)
		} else if r.raw != "" {
			missing++
		} else {
			rs = "—"
		}
		over := "—"
		if okb && okr && r.per > 0 {
			over = human((b.nsPerOp - base.nsPerOp) / r.per)
		}
		fmt.Printf("| %-58s | %12s | %12s | %8s | %14s | %-28s |\n", r.label, bs, rs, ratio, over, r.goal)
	}
	if missing > 0 {
		fmt.Fprintf(os.Stderr, "benchtable: %d figure(s) missing from the benchmark output\n", missing)
	}
}
