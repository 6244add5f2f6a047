package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/pebblestate/pebblestate/snapshot"
)

const verifyUsage = `Usage: pebblestate verify <checkpoint root | chk-<id> directory>

Checks every completed checkpoint of a checkpoint root (or the one
checkpoint of a chk-<id> directory): its metadata (checksum, version,
safe file names, every key group of each operator in exactly one handle),
then every file it references, read whole for its size and CRC-32C.

Prints one line per checkpoint on stdout and each problem once on stderr:
a damaged or missing file with the checkpoints that use it. Exits 0 only
if there is at least one checkpoint and every one is good; 1 otherwise
(including a missing, empty or non-checkpoint directory); 2 for bad usage.
`

// fileUse is a file as the checkpoints that reference it describe it.
type fileUse struct {
	ref snapshot.FileRef
	ids []int64
}

// verifyCommand checks every file of the target's checkpoints, each file
// once.
func verifyCommand(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, verifyUsage+"\nFlags:\n"); flags.PrintDefaults() }
	showProgress := progressFlag(flags, stderr)
	arg, code := parseCommand(flags, args, stderr)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pebblestate verify: %v\n", err)
		return 1
	}
	ctx := context.Background()
	t, ids, err := openCommand(ctx, arg)
	if err != nil {
		return fail(err)
	}

	// Read every metadata; gather the files, each with its users.
	cps := make(map[int64]*snapshot.Checkpoint)
	bad := make(map[int64]int) // damaged files per checkpoint; -1: unreadable metadata
	var uses []*fileUse
	byRef := make(map[snapshot.FileRef]*fileUse)
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, t.st, id)
		if err != nil {
			fmt.Fprintf(stderr, "checkpoint %d: %v\n", id, err)
			bad[id] = -1
			continue
		}
		cps[id] = cp
		for _, ref := range snapshot.Files(cp) {
			u := byRef[ref]
			if u == nil {
				u = &fileUse{ref: ref}
				byRef[ref] = u
				uses = append(uses, u)
			}
			u.ids = append(u.ids, id)
		}
	}
	// Check each file once, and report it once with its users.
	var total, done int64
	for _, u := range uses {
		total += u.ref.Size
	}
	bar := newProgressBar(stderr, "verify", showProgress())
	for i, u := range uses {
		err := snapshot.VerifyFile(ctx, t.st, u.ref)
		done += u.ref.Size
		detail := fmt.Sprintf("%d/%d files, %s of %s", i+1, len(uses), humanBytes(done), humanBytes(total))
		if i == len(uses)-1 {
			bar.finish(done, total, detail)
		} else {
			bar.update(done, total, detail)
		}
		if err == nil {
			continue
		}
		for _, id := range u.ids {
			bad[id]++
		}
		bar.interrupt()
		users := "used by " + idList("checkpoint", u.ids)
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist) && errors.As(err, &pe):
			fmt.Fprintf(stderr, "missing: %s (%s)\n", pe.Path, users)
		default:
			fmt.Fprintf(stderr, "damaged: %v (%s)\n", err, users)
		}
	}
	status := 0
	for _, id := range ids {
		switch n := bad[id]; {
		case n < 0:
			fmt.Fprintf(stdout, "checkpoint %d: BAD: unreadable metadata\n", id)
			status = 1
		case n > 0:
			fmt.Fprintf(stdout, "checkpoint %d: BAD: %s damaged or missing\n", id, plural(n, "file", "files"))
			status = 1
		default:
			cp := cps[id]
			files := len(snapshot.Files(cp))
			fmt.Fprintf(stdout, "checkpoint %d: ok (%s, %s)\n", id, plural(len(cp.Handles), "handle", "handles"), plural(files, "file", "files"))
		}
	}
	return status
}

// idList formats checkpoint ids: "checkpoint 3" or "checkpoints 3, 4".
func idList(what string, ids []int64) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) != 1 {
		what += "s"
	}
	return what + " " + strings.Join(s, ", ")
}
