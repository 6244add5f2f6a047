// Package storagetest holds test helpers shared by the packages that test
// what a checkpoint's names may touch: a description of a directory tree
// to compare before and after, and checkpoint storage that records every
// name it is asked to open, create or delete.
package storagetest
