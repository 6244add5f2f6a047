// Package ttltest holds fixtures shared by the tests of the TTL judge (ttl)
// and of the TTL compaction filter (compaction): state ids and TTL targets,
// keys, and values and lists stamped as the store keeps them.
package ttltest
