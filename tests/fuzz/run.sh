#!/bin/sh
# tests/fuzz/run.sh NNLUA CALLS SEED: the API fuzzer (tests/fuzz/api.lua) in
# a scratch directory (calls may write files named by random strings), under
# a time limit. Prints "fuzz: 1 passed, 0 failed" when it ends cleanly;
# a signal, a sanitizer report, a hang or a missing summary fails it, and
# the log's last lines name the call.
NNLUA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
CALLS=${2:-100000}; SEED=${3:-1}; LIMIT=${FUZZ_TIMEOUT:-1200}
SCRIPT=$(pwd)/tests/fuzz/api.lua
LUA_PATH="$(pwd)/lua/?.lua;;"; export LUA_PATH
dir=$(mktemp -d)
log=$dir/calls.log
cd "$dir" || exit 1
ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  timeout "$LIMIT" "$NNLUA" "$SCRIPT" "$CALLS" "$SEED" "$log" > out.txt 2> err.txt
st=$?
summary=$(grep 'no crash' err.txt)
if [ "$st" -eq 0 ] && [ -n "$summary" ] && ! grep -q 'Sanitizer' err.txt; then
  echo "fuzz: $summary"
  echo "fuzz: 1 passed, 0 failed"
  cd / && rm -rf "$dir"
  exit 0
fi
[ "$st" -eq 124 ] && echo "fuzz: no summary after ${LIMIT}s: a hang?"
echo "fuzz: exit $st; the last calls ($log):"
tail -n 5 "$log"
tail -n 40 err.txt
echo "fuzz: 0 passed, 1 failed"
exit 1
