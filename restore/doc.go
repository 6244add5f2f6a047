// Package restore rebuilds a backend's database from checkpoint handles,
// at the same or another key-group range (rescaling).
//
// A full restore reads, from every handle whose key groups intersect the
// new instance's, only the blocks of the key groups the instance owns,
// writes them into SST files (one sorted run per state, since each state's
// keys come out of the handles in ascending key-group order), and ingests
// all of them in one step. Nothing is visible in the database until every
// block has been read and verified, so a failed restore leaves it as it
// was.
package restore
