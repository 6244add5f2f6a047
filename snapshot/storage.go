package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// Storage holds checkpoint files under slash-separated names relative to
// its root, such as "chk-7/_metadata". Implementations must be safe for
// concurrent use.
//
// Names must satisfy CheckName; an implementation refuses any other name
// (with an error matching fs.ErrInvalid) before it touches anything, so
// that nothing outside its root is ever read, created or deleted.
//
// A committed file is never replaced. Of two writers of one name at most
// one commits; the other, and any Create of a name that exists, fails with
// an error wrapping ErrExist. This is what makes Commit of a checkpoint an
// exclusive create, and it is safe for every writer of this module, since
// each name carries the identity of the one writer entitled to it:
// MetadataPath the checkpoint id, snapshot.SharedName the writer (a
// backend's id, drawn by every open and restore) and the checkpoint that
// uploads, and a backend's data and private files both (see the backend
// package). A
// collision therefore means two writers took one identity, which must
// fail rather than lose one of them.
type Storage interface {
	// Create starts writing the named file. Nothing is visible under the
	// name until the returned writer's Commit succeeds; Abort, or a failed
	// Commit, leaves nothing behind. It fails with ErrExist if the name
	// exists, and so does Commit if the name appeared meanwhile.
	Create(ctx context.Context, name string) (FileWriter, error)
	// Open opens the named file for reading.
	Open(ctx context.Context, name string) (File, error)
	// List returns the names of the committed files whose names start with
	// prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes the named file. Deleting a missing file is not an
	// error.
	Delete(ctx context.Context, name string) error
}

// FileWriter streams a new file into storage.
type FileWriter interface {
	io.Writer
	// Commit makes the file durable and visible under its name, atomically
	// and exclusively: if the name exists it fails with ErrExist and
	// changes nothing.
	Commit() error
	// Abort discards the file. It is safe to call after Commit, when it
	// does nothing.
	Abort() error
}

// File is a committed file opened for reading.
type File interface {
	io.ReaderAt
	io.Closer
	// Size returns the file's size in bytes.
	Size() int64
}

// TempRemover is implemented by storage in which a writer that dies
// before Commit or Abort leaves a temporary file behind (Local does; an
// object store whose unfinished uploads stay invisible need not).
// retention.Retain and retention.Recover call it to collect that debris,
// which List does not show.
type TempRemover interface {
	// RemoveTemp removes every temporary file whose final name drop
	// approves, and every empty directory whose name, followed by a slash,
	// drop approves. The temporary file of a writer still running must
	// not be approved: its Commit would fail.
	RemoveTemp(ctx context.Context, drop func(name string) bool) error
}

// describe names storage in errors: its root directory, for storage that
// has one.
func describe(st Storage) string {
	if r, ok := st.(interface{ Root() string }); ok && r.Root() != "" {
		return r.Root()
	}
	return "the checkpoint storage"
}

// errWrite is returned by a writer used after Commit or Abort.
var errWrite = errors.New("file already committed or aborted")

func doneErr(name string) error { return fmt.Errorf("commit %s: %w", name, errWrite) }

// SameRoot reports whether a and b are one checkpoint root, the only place
// whose files a checkpoint in it may reference: storage with a Root method
// (Local, and wrappers that pass it on) by its directory, other storage by
// identity (the same comparable value). Nil is no root.
func SameRoot(a, b Storage) bool {
	if a == nil || b == nil {
		return false
	}
	type rooted interface{ Root() string }
	ra, aok := a.(rooted)
	rb, bok := b.(rooted)
	if aok && bok && ra.Root() != "" {
		return ra.Root() == rb.Root()
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && va.Equal(vb)
}
