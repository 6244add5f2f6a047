// Package keygroup holds the key-group arithmetic: which key group a
// serialized key belongs to (under one of a closed set of assigners:
// Flink's murmur3, the default, or Kafka's default
// partitioner), and which contiguous range of key groups each parallel
// subtask owns. The backend package re-exports it; frameworks use it
// to route records to the subtask that owns their key.
//
// # Stability
//
// Every assigner is part of the on-disk and on-the-wire contract: a key
// written under one version must land in the same key group under every
// later version, or restored state would be invisible. Golden vectors in the
// repository's testdata/ pin them: keygroup_vectors.txt for murmur3,
// kafka_partition_vectors.txt (computed with an independent Go Kafka
// client) for kafka-murmur2.
package keygroup
