// Package storagetest holds test helpers shared by the packages that test
// checkpoint storage and what a checkpoint's names may touch: the storage
// conformance suite, a description of a directory tree to compare before
// and after, checkpoint storage that records every name it is asked to
// open, create or delete, and files and checkpoints written into storage
// (Put, UploadShared, IncrementalCheckpoint, PutHandleFiles).
package storagetest
