// Package incremental turns a native Pebble checkpoint (a directory of
// hard-linked SSTs and copied private files) into an incremental snapshot:
// it uploads to shared/ only the SSTs the last completed checkpoint did not
// already upload, re-uploads the small private files (MANIFEST, OPTIONS,
// WAL, markers) into the checkpoint's directory, and lists reused SSTs as
// references to the earlier uploads. Uploads run in parallel and are
// checksummed with CRC-32C.
//
// SSTs are immutable and a file number is never reused within one database
// lineage, so a local SST name identifies its content for as long as the
// instance lives; across instances and forks the shared name carries the
// instance id (see snapshot.SharedName).
package incremental
