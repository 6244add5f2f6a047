// Package meta holds the records a backend keeps about itself and its
// states: the backend record (max parallelism, key-group range, key codec,
// instance id) and one record per registered state (name, id, kind, codec
// names, TTL flag). They are stored in the database under the reserved
// state id 0. A snapshot handle lists the state records as the public
// snapshot.State, which has the same fields and encoding; ToSnapshot and
// FromSnapshot convert between the two.
//
// Records are JSON with an explicit format version, so they stay readable
// by people inspecting a database and by later versions of this package.
package meta
