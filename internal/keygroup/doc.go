// Package keygroup holds the key-group arithmetic: which key group a
// serialized key belongs to, and which contiguous range of key groups each
// parallel subtask owns. The backend package re-exports it; frameworks use it
// to route records to the subtask that owns their key.
//
// # Stability
//
// Assign is part of the on-disk and on-the-wire contract: a key written under
// one version must land in the same key group under every later version, or
// restored state would be invisible. Golden vectors in the repository's
// testdata/ pin it.
package keygroup
