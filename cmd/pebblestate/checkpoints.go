package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pebblestate/pebblestate/snapshot"
)

// The checkpoint commands, inspect and verify, work on a target: a
// checkpoint root (every checkpoint in it) or one checkpoint's chk-<id>
// directory, either reached through symbolic links.

// target is what a checkpoint command looks at.
type target struct {
	arg  string           // the path as given
	st   snapshot.Storage // the checkpoint root
	only int64            // the one checkpoint asked for, or -1 for all
}

var chkDir = regexp.MustCompile(`^chk-(0|[1-9][0-9]*)$`)

// openTarget resolves a command's path argument. It fails, naming the
// path once, if the path is missing or not a directory. A URL
// (s3://bucket/prefix, or .../chk-<id>) is opened by its storage, which
// checks it is reachable.
func openTarget(ctx context.Context, arg string) (*target, error) {
	if snapshot.IsURL(arg) {
		t := &target{arg: arg, only: -1}
		root := arg
		if parent, id, ok := snapshot.SplitCheckpoint(arg); ok {
			root, t.only = parent, id
		}
		st, err := snapshot.OpenRoot(ctx, root)
		if err != nil {
			return nil, err
		}
		t.st = st
		return t, nil
	}
	fi, err := os.Stat(arg)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s does not exist", arg)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", arg, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is not a directory", arg)
	}
	real, err := filepath.EvalSymlinks(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	t := &target{arg: arg, only: -1}
	root := real
	if m := chkDir.FindStringSubmatch(filepath.Base(real)); m != nil {
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: checkpoint id %s out of range", arg, m[1])
		}
		t.only, root = id, filepath.Dir(real)
	}
	if t.st, err = snapshot.NewLocal(root); err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	return t, nil
}

// ids returns the checkpoints of the target whose metadata exists. It
// fails if there is none, saying why: not a checkpoint root, no
// checkpoint completed, or the chk-<id> directory asked for has no
// metadata.
func (t *target) ids(ctx context.Context) ([]int64, error) {
	ids, err := snapshot.Completed(ctx, t.st)
	if err != nil {
		return nil, err
	}
	if t.only >= 0 {
		for _, id := range ids {
			if id == t.only {
				return []int64{id}, nil
			}
		}
		return nil, fmt.Errorf("%s: checkpoint %d never completed (no %s)", t.arg, t.only, snapshot.MetadataName)
	}
	if len(ids) > 0 {
		return ids, nil
	}
	var entries []string
	if l, ok := t.st.(*snapshot.Local); ok {
		des, err := os.ReadDir(l.Root())
		if err != nil {
			return nil, err
		}
		for _, e := range des {
			entries = append(entries, e.Name())
		}
	} else {
		names, err := t.st.List(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			entries = append(entries, strings.SplitN(n, "/", 2)[0])
		}
	}
	for _, e := range entries {
		if chkDir.MatchString(e) || e == snapshot.SharedDir {
			return nil, fmt.Errorf("%s: no completed checkpoint", t.arg)
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s is empty: no checkpoint", t.arg)
	}
	return nil, fmt.Errorf("%s is not a checkpoint root: it holds no chk-<id> directory", t.arg)
}

// parseCommand parses a checkpoint command's flags, which may come before
// or after its one path argument. It returns the exit code to stop with,
// or -1 to go on: 0 after -h (usage printed once), 2 for bad usage.
func parseCommand(flags *flag.FlagSet, args []string, stderr io.Writer) (string, int) {
	var paths []string
	for {
		if err := flags.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", 0
			}
			return "", 2 // the flag package printed the error and the usage
		}
		if flags.NArg() == 0 {
			break
		}
		paths = append(paths, flags.Arg(0))
		args = flags.Args()[1:]
	}
	if len(paths) != 1 {
		fmt.Fprintf(stderr, "pebblestate %s: want one path, got %d\n", flags.Name(), len(paths))
		flags.Usage()
		return "", 2
	}
	return paths[0], -1
}

// humanBytes formats a size for people.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// plural formats a count of things.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// openCommand opens the target named by a command's argument (inspect,
// verify) and lists its checkpoint ids.
func openCommand(ctx context.Context, arg string) (*target, []int64, error) {
	t, err := openTarget(ctx, arg)
	if err != nil {
		return nil, nil, err
	}
	ids, err := t.ids(ctx)
	if err != nil {
		return nil, nil, err
	}
	return t, ids, nil
}
