#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (make fuzz: 10s; make test: 2s).
# A target that finds a failure stops the script; its input is kept in testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
n=0
start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
    echo "== fuzz ${dir#./} $f ($t)"
    if ! go test "$dir" -run '^$' -fuzz "^$f\$" -fuzztime "$t" > "$log" 2>&1; then
      cat "$log"
      echo "fuzz: $f in ${dir#./} failed (the failing input is under ${dir#./}/testdata/fuzz/$f)"
      exit 1
    fi
    n=$((n + 1))
  done
done
echo "fuzz: $n targets, $t each, passed in $((SECONDS - start)) s"
