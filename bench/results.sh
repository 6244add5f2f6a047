#!/usr/bin/env bash
# results.sh runs every benchmark whose figures bench/RESULTS.md reports,
# at the sizes and counts it reports them at, one group after another in
# one test binary, and appends the raw output to a file (default
# /tmp/pebblestate-results.txt) headed by the machine, the commit and the
# load. It takes about 40 minutes on the 2-vCPU machine of RESULTS.md, and
# is only worth running on a quiet machine: every figure is a ratio
# against a baseline timed in the same run, but the ratios near their
# targets still move with other jobs' load.
#
#   bench/results.sh [output file] [group ...]
#
# With groups named (hot ttl snapsync snapshot rescale s3 timers coord
# cleanup wal window nexmark), only those run.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-/tmp/pebblestate-results.txt}
shift || true
groups=("$@")
bin=${TMPDIR:-/tmp}/pebblestate-results.test
go test -c -o "$bin" .

want() {
  [ ${#groups[@]} -eq 0 ] && return 0
  local g
  for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done
  return 1
}

# run GROUP ARGS...: one benchmark invocation, headed in the output.
run() {
  local group=$1
  shift
  want "$group" || return 0
  {
    echo
    echo "### $group: $*"
    echo "### $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee -a "$out"
  "$bin" -test.run '^$' -test.benchmem "$@" 2>&1 | grep --line-buffered -v '^PASS$' | tee -a "$out"
}

{
  echo "# bench/results.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- .. || echo ' (with uncommitted changes)')"
  echo "# $(go version); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# $(uname -sr); $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
} | tee -a "$out"

run hot -test.count 2 -test.bench 'BenchmarkValueGet$|BenchmarkRawPebbleGet$|BenchmarkValueUpdate$|BenchmarkRawPebbleSet$|BenchmarkListAppend$|BenchmarkRawPebbleMerge$|BenchmarkMapUpdate$|BenchmarkRawPebbleMapSet$|BenchmarkMapGet$|BenchmarkRawPebbleMapGet$'
run ttl -test.bench 'BenchmarkTtlPaired'
run snapsync -test.bench 'BenchmarkFullSnapshotSync$|BenchmarkSnapshotSyncAfterTTLReads'
run snapsync -test.bench 'BenchmarkIncrementalSnapshotSync' -test.benchtime 20x -test.count 3
run snapshot -test.count 2 -test.bench 'BenchmarkFullSnapshot$|BenchmarkRawScanToFile$|BenchmarkFullRestore$|BenchmarkFullRestoreHalf$|BenchmarkRawIngest$|BenchmarkIncrementalSecondCheckpoint$|BenchmarkIncrementalRestore$|BenchmarkCopyFiles$'
run rescale -test.bench 'Rescale' -rescalekeys 1000000 -test.benchtime 5x -test.count 2
run rescale -test.bench 'Rescale' -rescalekeys 2000000 -test.benchtime 5x -test.count 2
run s3 -test.bench 'S3CheckpointPaired|S3RestorePaired' -test.benchtime 8x
run s3 -test.bench 'S3RestoreLocalRecoveryPaired' -test.benchtime 20x
run timers -test.bench 'BenchmarkTimerWritePaired$|BenchmarkTimerDeletePaired$|BenchmarkTimerFirePaired$'
run coord -test.bench 'BenchmarkCoordinatorPaired$' -test.benchtime 40x
run cleanup -test.count 2 -test.bench 'BenchmarkCleanupExpired$|BenchmarkCleanupExpiredHalfExpired$|BenchmarkRawPebbleScan$|BenchmarkValueUpdateWhileSweeping$|BenchmarkValueUpdate$'
run wal -test.count 2 -test.bench 'BenchmarkValueUpdateWAL$|BenchmarkRawPebbleSetWAL$'
run window -test.bench 'BenchmarkWindow' -test.benchtime 200000x -keys 20000
run nexmark -test.bench 'BenchmarkNexmark' -test.benchtime 1x -test.count 3 -nexmark.events 200000 -nexmark.parallelism 2
echo "# done $(date -u +%H:%M:%S)" | tee -a "$out"
