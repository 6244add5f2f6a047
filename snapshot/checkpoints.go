package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Dir returns the directory name of checkpoint id, "chk-<id>".
func Dir(id int64) string { return "chk-" + strconv.FormatInt(id, 10) }

// MetadataPath returns the storage name of checkpoint id's metadata.
func MetadataPath(id int64) string { return Dir(id) + "/" + MetadataName }

// SharedDir is the directory of files several checkpoints share.
const SharedDir = "shared"

// ParseDir returns the id of the checkpoint whose directory holds name,
// if name is under "chk-<id>/" for a well-formed id.
func ParseDir(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "chk-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(num, 10, 64)
	return id, err == nil && id >= 0 && Dir(id) == "chk-"+num
}

// where names a file of st in errors: its local path for storage in a
// directory, else its storage name.
func where(st Storage, name string) string {
	if r, ok := st.(interface{ Root() string }); ok && r.Root() != "" {
		if IsURL(r.Root()) {
			return strings.TrimSuffix(r.Root(), "/") + "/" + name
		}
		return filepath.Join(r.Root(), filepath.FromSlash(name))
	}
	return name
}

// Commit completes checkpoint cp by writing its metadata, the commit point.
//
// It first checks cp (Checkpoint.Validate): per operator, the handles
// agree on the max parallelism and hold every key group exactly once
// (else ErrIncomplete or ErrInconsistent, naming the operator and the key
// groups), every handle belongs to checkpoint cp.ID and its file names are
// safe. Nothing is written for a checkpoint that fails.
//
// The metadata is an exclusive create: of two commits of one id, exactly
// one succeeds, and the other fails with ErrExist; a committed checkpoint
// is never replaced. A checkpoint older than the newest completed one is
// subsumed (ErrSubsumed) and cannot be committed: retention may already
// have deleted shared files it reuses.
//
// Every file the checkpoint references must be in storage: each handle's
// own files (Handle.Files), the shared files this checkpoint uploaded and
// every operator state file with the size their reference records; shared
// files reused from earlier checkpoints, which were size-checked when
// those committed, must be listed under shared/. Else the error wraps
// ErrNotExist or ErrCorrupt and names the operator, the key groups or
// subtask, and the file. Checksums are Verify's work (they cost a read of
// every file).
func Commit(ctx context.Context, st Storage, cp *Checkpoint) error {
	if cp == nil {
		return errors.New("commit: no checkpoint")
	}
	if err := cp.Validate(); err != nil {
		return fmt.Errorf("commit checkpoint %d: %w", cp.ID, err)
	}
	ids, err := Completed(ctx, st)
	if err != nil {
		return fmt.Errorf("commit checkpoint %d: %w", cp.ID, err)
	}
	for _, id := range ids {
		if id == cp.ID {
			return fmt.Errorf("checkpoint %d already exists: %s: %w", cp.ID, where(st, MetadataPath(cp.ID)), ErrExist)
		}
		if id > cp.ID {
			return fmt.Errorf("%w: checkpoint %d, newer checkpoint %d completed in %s", ErrSubsumed, cp.ID, id, describe(st))
		}
	}
	if err := checkFiles(ctx, st, cp); err != nil {
		return err
	}
	enc, err := EncodeMetadata(cp)
	if err != nil {
		return err
	}
	w, err := st.Create(ctx, MetadataPath(cp.ID))
	if err == nil {
		if _, err = w.Write(enc); err == nil {
			err = w.Commit()
		}
		if err != nil {
			_ = w.Abort()
		}
	}
	if errors.Is(err, ErrExist) {
		return fmt.Errorf("checkpoint %d already exists (another commit won): %w", cp.ID, err)
	}
	if err != nil {
		return fmt.Errorf("commit checkpoint %d: %w", cp.ID, err)
	}
	return nil
}

// Load reads and verifies checkpoint id's metadata (DecodeMetadata), which
// must describe checkpoint id.
func Load(ctx context.Context, st Storage, id int64) (*Checkpoint, error) {
	name := MetadataPath(id)
	b, err := ReadFile(ctx, st, name)
	if err != nil {
		return nil, err
	}
	cp, err := decodeFrame(where(st, name), b)
	if err != nil {
		return nil, err
	}
	if cp.ID != id {
		return nil, fmt.Errorf("%w: %s: holds checkpoint %d", ErrCorrupt, where(st, name), cp.ID)
	}
	if err := cp.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, where(st, name), err)
	}
	return cp, nil
}

// ReadFile reads a whole file from storage.
func ReadFile(ctx context.Context, st Storage, name string) ([]byte, error) {
	f, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", where(st, name), err)
	}
	return b, nil
}

// Completed returns the ids of the checkpoints whose metadata exists, in
// ascending order. It does not verify them; Latest does.
func Completed(ctx context.Context, st Storage) ([]int64, error) {
	names, err := st.List(ctx, "chk-")
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, n := range names {
		if id, ok := ParseDir(n); ok && n == MetadataPath(id) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Skipped is a checkpoint that was passed over, or kept, because its
// metadata exists but does not verify, and why.
type Skipped struct {
	// ID is the checkpoint's id.
	ID int64
	// Err says why: it wraps ErrCorrupt (and ErrUnknownVersion for a
	// version this build does not read) and names the metadata file.
	Err error
}

// Latest returns the newest checkpoint whose metadata verifies. Newer
// checkpoints whose metadata exists but does not verify are passed over:
// LatestWithReport says which.
func Latest(ctx context.Context, st Storage) (*Checkpoint, error) {
	cp, _, err := LatestWithReport(ctx, st)
	return cp, err
}

// LatestWithReport returns the newest checkpoint whose metadata verifies,
// and the newer ones it passed over because their metadata exists but does
// not verify, newest first, each with its error. If none verifies, the
// error wraps ErrNoCheckpoint, names where it looked and each checkpoint
// passed over.
func LatestWithReport(ctx context.Context, st Storage) (*Checkpoint, []Skipped, error) {
	ids, err := Completed(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	var skipped []Skipped
	for i := len(ids) - 1; i >= 0; i-- {
		cp, err := Load(ctx, st, ids[i])
		if err == nil {
			return cp, skipped, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return nil, skipped, err
		}
		skipped = append(skipped, Skipped{ID: ids[i], Err: err})
	}
	if len(skipped) == 0 {
		return nil, nil, fmt.Errorf("%w in %s", ErrNoCheckpoint, describe(st))
	}
	return nil, skipped, fmt.Errorf("%w in %s; passed over: %w", ErrNoCheckpoint, describe(st), SkippedErr(skipped))
}

// listErr joins errors on one line.
type listErr []error

func (e listErr) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e listErr) Unwrap() []error { return e }

// SkippedErr returns one error that wraps each skipped checkpoint's error,
// joined on one line.
func SkippedErr(skipped []Skipped) error {
	errs := make(listErr, len(skipped))
	for i, s := range skipped {
		errs[i] = s.Err
	}
	return errs
}

// Discard deletes checkpoint id: first its metadata, so it stops existing
// at once, then every other file in its directory. Files in shared/ are
// left alone.
func Discard(ctx context.Context, st Storage, id int64) error {
	if err := st.Delete(ctx, MetadataPath(id)); err != nil {
		return err
	}
	names, err := st.List(ctx, Dir(id)+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := st.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
