#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (make fuzz: 10s; make test: 2s).
# A target that finds a failure stops the script; its input is kept in testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
n=0
start=$SECONDS
tmp=$(mktemp -d)
log=$tmp/log
trap 'rm -rf "$tmp"' EXIT
cache=$(go env GOCACHE)/fuzz
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
  # One instrumented test binary per package, built once for all its targets (go test -fuzz
  # would link it again for each); run from the package's directory, where its seed corpus
  # and any failing input live. From that directory too because packaging/ is a Go module
  # of its own.
  bin=$tmp/fuzz.test
  if ! (cd "$dir" && go test -c -fuzz . -o "$bin" .) > "$log" 2>&1; then
    cat "$log"; echo "fuzz: building ${dir#./}'s fuzz tests failed"; exit 1
  fi
  corpus=$cache/$(cd "$dir" && go list .)
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
    echo "== fuzz ${dir#./} $f ($t)"
    ok=0
    for try in 1 2; do
      if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^$f\$" -test.fuzztime "$t" -test.fuzzcachedir "$corpus") > "$log" 2>&1; then ok=1; break; fi
      # Go's fuzzing coordinator sometimes reports its own time limit ("context deadline
      # exceeded") as a failure without any failing input. A real finding always writes
      # "Failing input written to ...": that fails at once; the engine's timeout is retried once.
      if grep -q 'Failing input written to' "$log" || ! grep -q 'context deadline exceeded' "$log"; then break; fi
      echo "   (go's fuzz engine stopped at its deadline without a finding; retrying $f once)"
    done
    if [ "$ok" != 1 ]; then
      cat "$log"
      if grep -q 'Failing input written to' "$log"; then
        echo "fuzz: $f in ${dir#./} failed (the failing input is under ${dir#./}/testdata/fuzz/$f)"
      else
        echo "fuzz: $f in ${dir#./} failed without a failing input (see the output above)"
      fi
      exit 1
    fi
    n=$((n + 1))
  done
done
echo "fuzz: $n targets, $t each, passed in $((SECONDS - start)) s"
