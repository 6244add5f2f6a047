// Package bench holds the state benchmarks of pebblestate: the per-op
// benchmarks of apache/flink-benchmarks' ValueStateBenchmark,
// ListStateBenchmark and MapStateBenchmark run on the backend, and raw
// Pebble baselines that write and read the very same bytes with the same
// Pebble options. The package has no API; everything is in its tests.
//
// # Running
//
//	go test ./bench -run '^$' -bench . -benchmem                     # full run, 500k keys
//	bench/results.sh                                                 # every figure of RESULTS.md, about 15 minutes
//	go test ./bench -run '^$' -bench . -benchtime=1x -keys=1000      # smoke test (CI), seconds
//	go test ./bench                                                  # TestRawFixturesMatchState only
//
// The coordinator benchmarks (coordinator_test.go: a checkpoint of 8
// backends through checkpoint.Coordinator against the direct calls) take
// -coordkeys, entries per backend (default 20,000; CI passes 100).
//
// BenchmarkNexmark (nexmark_test.go) runs each query of the demo job end
// to end through an embedded NATS JetStream server, beside the in-memory
// reference and a raw consume of the same input; it takes
// -nexmark.events (default 200,000; CI passes 2,000),
// -nexmark.parallelism (default 2), -nexmark.interval (checkpoints,
// default 1s) and -nexmark.cpuprofile (a CPU profile of the job runs
// alone; -test.cpuprofile would also profile the publishing and the
// baselines, and cannot be used with it).
//
// The flag -keys (default 500,000) sets both SETUP_KEY_COUNT, the existing
// keys written before each benchmark, and NEW_KEY_COUNT, the keys the add
// benchmarks create. The usual testing flags apply: -benchtime, -count,
// -cpuprofile, -memprofile. With the default key count a full run takes
// about 80 s per -count on two cores, plus about 15 s once per process to
// build the fixtures.
//
// # What is measured
//
// The workload is flink-benchmarks' StateBenchmarkConstants: int64 keys
// 0..S-1 (existing) and S..S+N-1 (new), each set shuffled with a fixed seed;
// int64 values; maps of 10 entries with int64 map keys 0..9 and float64
// values; a 100-element list for addAll. As in flink's KeyValue, op number i
// takes its key, value, map key and map value from one rolling index i
// into those arrays. One op is Backend.SetCurrentKey plus one state call,
// so key encoding and key-group hashing are part of every op.
//
//	Benchmark          flink op      one op
//	ValueGet           valueGet      SetCurrentKey(existing) + Value.Get
//	ValueUpdate        valueUpdate   SetCurrentKey(existing) + Value.Update
//	ValueAdd           valueAdd      SetCurrentKey(new) + Value.Update
//	ValueUpdateWAL     -             ValueUpdate with Options.EnableWAL
//	ListAppend         listAppend    SetCurrentKey(existing) + List.Add (one element)
//	ListGet            listGet       SetCurrentKey(existing) + List.Get
//	ListUpdate         listUpdate    SetCurrentKey(existing) + List.Update (one element)
//	ListAddAll         listAddAll    SetCurrentKey(existing) + List.AddAll (100 elements)
//	MapGet             mapGet        SetCurrentKey(existing) + Map.Get
//	MapUpdate          mapUpdate     SetCurrentKey(existing) + Map.Put
//	MapContains        mapContains   SetCurrentKey(existing) + Map.Contains(mapKey<<1), half misses
//	MapIterate         mapIterator   SetCurrentKey(existing) + Map.Entries over all 10 entries;
//	                                 ns/op is per call, the extra ns/entry metric per entry (flink's unit)
//	RawPebbleGet       -             DB.Get of an existing value-state key (baseline)
//	RawPebbleSet       -             DB.Set of an existing value-state key (baseline)
//	RawPebbleSetWAL    -             RawPebbleSet with the WAL on
//	RawPebbleMerge     -             DB.Merge of one list element onto an existing list (baseline)
//	RawPebbleMapGet    -             DB.Get of an existing map entry (like-for-like, not a target)
//	RawPebbleMapSet    -             DB.Set of an existing map entry (like-for-like, not a target)
//	TimerRegister      -             SetCurrentKey(existing) + TimerService.RegisterEventTimeTimer
//	TimerDelete        -             SetCurrentKey(existing) + TimerService.DeleteEventTimeTimer
//	TimerFire          -             AdvanceWatermark over -timers due timers; ns/timer per timer
//	RawPebbleScanDelete -            iterate over the same -timers entries, DB.Delete each (baseline)
//	TimerFirePaired    -             TimerFire and RawPebbleScanDelete interleaved; fire/raw-med
//	TimerWritePaired   -             blocks of RawPebbleSet, TimerRegister, TimerDelete in turn
//	TimerDeletePaired  -             blocks of RawPebbleSet and TimerDelete of flushed timers
//
// The timer targets: TimerRegister and TimerDelete at most 1.25x
// RawPebbleSet; TimerFire at most 2x RawPebbleScanDelete per timer. The
// flag -timers (default 100,000, or -keys if fewer) sets the batch size.
//
// The raw baselines store exactly what the state benchmarks store, which
// TestRawFixturesMatchState checks byte for byte:
//
//	value state key  [state id 2][key group 1][int64 key 8]  11 bytes, value 8 bytes
//	map entry key    [value state key 11][int64 map key 8]   19 bytes, value 8 bytes (float64)
//	list element     [uvarint length 1][int64 8]              9 bytes, one merge operand per Add
//
// Raw keys are precomputed, so a raw op is the Pebble call alone; the
// ratio of a state benchmark to its baseline is the backend's whole cost.
// The raw databases use rawPebbleOptions, the options the backend opens
// its database with (backend.Options.PebbleOptions) at their defaults: 64 MiB block cache, 64 MiB memtables, FormatNewest, a 10-bit
// bloom filter on every level, the WAL off, and the list merge operator
// listfmt.Merger. It leaves out the backend's EventListener, which feeds
// background TTL cleanup: that is backend machinery, and its cost belongs
// to the backend's side of the ratio.
//
// # Setup
//
// Setup never counts: each benchmark does it before its b.Loop loop, and
// b.Loop runs the benchmark function once per -count, scaling the
// iterations inside. Each state kind has a fixture, a database directory
// built once per process on first use with SETUP_KEY_COUNT keys written in
// ascending order, as flink's setUp does; each raw baseline has a twin
// fixture written with raw Pebble in the same order with the same bytes.
// Every benchmark clones its fixture (hard links for table files, as
// Pebble's checkpoints do) and opens the clone, so writes of one benchmark
// never reach another and all start from the same LSM shape. The read
// benchmarks, and all map benchmarks with their raw twins, first scan the
// whole clone once, which warms the 64 MiB block cache; the value and list
// fixtures (10 MB on disk) fit in it, the map fixtures (5M entries, about
// 100 MB) do not.
//
// The list fixtures follow flink's per-iteration list setup: one element
// added to every key, then everything compacted into the bottom level
// (Backend.Compact, and the same Pebble calls for the raw twin). The fresh
// clone per benchmark stands in for flink's per-iteration reset; within
// one run, ListAppend and ListAddAll grow the lists as flink's do within an
// iteration. The value and map fixtures are flushed, not compacted, as in
// flink. Each state fixture and its raw twin end up with the same levels
// and sizes.
//
// # Targets
//
// Take the median ns/op of each benchmark over the -count runs (benchstat
// prints it), then:
//
//	ValueGet    / RawPebbleGet    <= 1.25
//	ValueUpdate / RawPebbleSet    <= 1.25
//	ListAppend  / RawPebbleMerge  <= 1.25
//	MapGet      / RawPebbleGet    <= 1.25
//	MapUpdate   / RawPebbleSet    <= 1.25
//
// and allocs/op of ValueGet and ValueUpdate must not exceed those of
// RawPebbleGet and RawPebbleSet. MapGet and MapUpdate run on the 10x larger
// map fixture, so against RawPebbleGet and RawPebbleSet they also pay for
// the larger database; MapGet/RawPebbleMapGet and MapUpdate/RawPebbleMapSet
// show the backend's own share. ValueUpdateWAL/ValueUpdate and
// RawPebbleSetWAL/RawPebbleSet give the cost of turning the WAL on.
//
// Every benchmark also reports cpu-ns/op, the CPU time of the whole
// process per op (Pebble's background flushes and compactions included).
// When other processes compete for the cores, ns/op swings by up to 2x
// between runs while cpu-ns/op mostly stays within about 20%, so on a
// shared machine compare the ratios of both.
//
// With the output of a run in bench.txt, this prints the medians and the
// ratios of ns/op (col=3) or of cpu-ns/op (col=5):
//
//	awk -v col=3 '/^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); sub(/^Benchmark/, "", n); v[n] = v[n] " " $col }
//	  function med(s,  a, k, i, j, t) { k = split(s, a, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
//	    if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }; return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
//	  END { for (n in v) m[n] = med(v[n]); for (n in m) printf "%-16s %10.0f\n", n, m[n]
//	    split("ValueGet/RawPebbleGet ValueUpdate/RawPebbleSet ListAppend/RawPebbleMerge MapGet/RawPebbleGet MapUpdate/RawPebbleSet", r, " ")
//	    for (i = 1; i <= 5; i++) { split(r[i], p, "/"); printf "%-28s %.2f\n", r[i], m[p[1]] / m[p[2]] } }' bench.txt
//
// # TTL targets
//
// The TTL benchmarks (BenchmarkTtlValueGet and the rest, ttl_test.go) run
// flink's TTL state benchmarks on TTL twins of the fixtures, for eight
// combinations of TTL parameters each. Their target, at most 1.15x the
// plain benchmark of the same op, is finer than the drift between two runs
// on a shared machine, so BenchmarkTtlPaired measures it: one loop runs a
// TTL op and its plain twin in alternating blocks of 256 ops over the same
// keys, and reports ttl/plain, the ratio of their times (ttl_paired_test.go).
//
// # Caveats
//
// Two cores are shared by the benchmark goroutine and Pebble's flushes and
// compactions, and by anything else running on the machine: repeat runs
// (-count), compare medians, take ratios within one run only, and check
// them against cpu-ns/op.
package bench
