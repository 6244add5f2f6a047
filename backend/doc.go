// Package backend is pebblestate's public face: a persistent keyed-state
// backend for stream processors, built on Pebble, in the manner of Flink's
// RocksDB state backend.
//
// # Basics
//
// A stream framework runs an operator as parallel subtasks. Each subtask
// owns a contiguous range of key groups (see KeyGroupRangeForSubtask) and
// opens one Backend for it with Open. For each record the framework calls
// SetCurrentKey; user code then reads and writes state through typed
// handles registered from descriptors:
//
//	b, err := backend.Open(backend.String, backend.Options{Dir: dir})
//	counts, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
//	err = b.SetCurrentKey("user-42")
//	n, _, err := counts.Get()
//	err = counts.Update(n + 1)
//
// There are five kinds of state, as in Flink: Value, List, Map, Reducing
// and Aggregating. Each is registered in the void namespace (GetValue, ...)
// or with a namespace codec (GetValueNS, ...) for state scoped to windows;
// SetCurrentNamespace then picks the window. List, Reducing and
// Aggregating state can merge namespaces, as session windows need.
//
// # Storage
//
// All states share one Pebble database. An entry's key is the state's id,
// the key group, the key, the namespace and, for maps, the map key; see
// internal/keys. Encodings come from Codecs, whose bytes are stored and
// decide key groups (by Options.KeyGroupAssigner: Flink's Murmur3 by
// default, or KafkaMurmur2, Kafka's partitioner), so they must never
// change. State metadata is stored
// beside the data, so reopening a directory and registering the same
// descriptors finds every state again, and registering a name with another
// kind or codec is an error, not corruption.
//
// By default the write-ahead log is off, as in Flink: durability comes from
// checkpoints, and writes since the last Flush or Close are lost if the
// process dies.
//
// # Time-to-live
//
// A descriptor's TTL field (a ttl.Config) gives a state Flink's state TTL:
// entries (list elements and map entries each on their own) expire a set
// time after their last write, or read, as judged by Options.Clock. Reads
// never return expired entries (unless asked to, once) and remove them.
// Expired data also leaves the disk without being read: background
// cleanup scans what flushes and compactions write plus a periodic sweep,
// access cleanup (Flink's "incremental cleanup") checks a few entries per
// access if asked, and
// CleanupExpired runs a full pass. TTL can be switched on or off for an
// existing state; its values are migrated when it is registered.
//
// # Checkpoints
//
// Snapshot takes a point-in-time snapshot in microseconds (full) or a
// native Pebble checkpoint (incremental, Options.IncrementalCheckpoints);
// the returned AsyncSnapshot's Run writes it into checkpoint storage
// (package snapshot) while state access goes on, and yields a handle.
// Checkpoint does all of it for a single instance. Restore builds a backend
// from the handles of a checkpoint for any key-group range, so a job can
// come back at another parallelism; Options.RestoreMode says whether it
// claims the restored checkpoint's files (Claim) or never depends on them
// (NoClaim, the default). Every backend writes under its own writer id
// (WriterID), so two backends never write one file.
//
// # Caveats
//
// A Backend and its states are used from one goroutine at a time (see
// Backend). Iterators (KeysInNamespace, Map.Entries, ...) read a
// point-in-time view; the loop body may write state.
package backend
