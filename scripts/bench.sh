#!/usr/bin/env bash
# `make bench`: runs the benchmarks that carry a figure and its raw baseline in the same run,
# then prints one table (scripts/bench.rows lists the rows). Raw output: test-output/bench.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-output
out=test-output/bench.txt
: > "$out"
benchtime=${BENCHTIME:-1x}
run() { # package, regexp, benchtime
  echo "== go test -bench '$2' $1" >&2
  go test -run '^$' -bench "$2" -benchtime "${3:-$benchtime}" -count 1 -timeout 30m "$1" 2>&1 | tee -a "$out" | grep -E '^(Benchmark|FAIL|---|panic)' >&2
}
while read -r pkg re bt; do
  [[ -z $pkg || $pkg == \#* ]] && continue
  run "$pkg" "$re" "${bt:-}"
done < scripts/bench.pkgs
if grep -q '^bench-ui:' ui/ui.mk 2>/dev/null; then make --no-print-directory bench-ui 2>&1 | tee -a "$out" | grep -E '^Benchmark' >&2; fi
echo
go run ./internal/benchtable -spec scripts/bench.rows < "$out"
