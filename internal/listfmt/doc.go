// Package listfmt is the stored form of list state and the Pebble merge
// operator that appends to it.
//
// A list value is a sequence of elements, each framed as a uvarint length
// followed by that many bytes. Framed sequences concatenate into framed
// sequences, so appending is a byte concatenation and the merge operator is
// associative in both directions, as Pebble requires. The operator buffers
// operands and joins them once in Finish, so folding n operands copies each
// byte at most twice rather than O(n) times.
//
// The merger's name is stored by Pebble in every database created with it;
// it must never change.
package listfmt
