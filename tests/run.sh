#!/bin/sh
# tests/run.sh NNLUA [engine test binaries...]
# Runs the C engine tests, then the busted specs twice: inside the nnlua
# executable and under stock lua5.4 with require "nnlua" (skipped for an
# ASan build, whose module cannot load into an uninstrumented lua5.4).
# With ASAN_NNLUA set, the specs run a third time in that ASan/UBSan
# build; then the API fuzzer (FUZZ_CALLS calls, seed FUZZ_SEED) runs in the
# ASan build. Ends with one line "N passed, N failed" summing every suite.
NNLUA=$1; shift
MODDIR=$(dirname "$NNLUA")
passed=0; failed=0; broken=0

count() { # count LABEL OUTPUT-FILE STATUS
  line=$(grep -E '^[a-z ]*: [0-9]+ passed, [0-9]+ failed$' "$2" | tail -1)
  if [ -z "$line" ]; then
    echo "$1: no summary line (exit $3)"; broken=$((broken + 1)); return
  fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
  passed=$((passed + p)); failed=$((failed + f))
  [ "$3" -ne 0 ] && [ "$f" -eq 0 ] && broken=$((broken + 1))
  echo "$1: $p passed, $f failed"
}

out=$(mktemp)
for t in "$@"; do
  "$t" > "$out" 2>&1; st=$?
  grep -v 'passed,' "$out"
  count "engine $(basename "$t")" "$out" $st
done

export NNLUA_EXE="$NNLUA"
"$NNLUA" /usr/bin/busted -o tests/output.lua tests > "$out" 2>&1; st=$?
grep -v '^busted: ' "$out"
count "specs in $NNLUA" "$out" $st

if [ -z "$ASAN" ]; then
  lua5.4 /usr/bin/busted --cpath="$MODDIR/?.so" -o tests/output.lua tests > "$out" 2>&1; st=$?
  grep -v '^busted: ' "$out"
  count "specs in lua5.4" "$out" $st
fi
if [ -n "$ASAN_NNLUA" ]; then
  ASAN=1 NNLUA_EXE="$ASAN_NNLUA" "$ASAN_NNLUA" /usr/bin/busted -o tests/output.lua tests > "$out" 2>&1; st=$?
  grep -v '^busted: ' "$out"
  count "specs in $ASAN_NNLUA" "$out" $st
fi

FUZZ_NNLUA=${ASAN_NNLUA:-$NNLUA}
sh tests/fuzz/run.sh "$FUZZ_NNLUA" "${FUZZ_CALLS:-100000}" "${FUZZ_SEED:-1}" > "$out" 2>&1; st=$?
grep -v ' passed, ' "$out"
count "fuzz in $FUZZ_NNLUA" "$out" $st
rm -f "$out"
failed=$((failed + broken))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
