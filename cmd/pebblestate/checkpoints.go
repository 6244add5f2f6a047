package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/pebblestate/pebblestate/snapshot"
)

// inspectCommand prints the completed checkpoints of a checkpoint root:
// per handle its operator, instance, kind, key groups, states and sizes,
// the newly uploaded bytes beside the full state size.
func inspectCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pebblestate inspect <checkpoint root>\n\nLists the completed checkpoints and what each instance's handle holds.\n")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	st, err := openRoot(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate inspect: %v\n", err)
		return 1
	}
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, st)
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate inspect: %v\n", err)
		return 1
	}
	if len(ids) == 0 {
		fmt.Fprintf(stdout, "%s: no completed checkpoint\n", fs.Arg(0))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "checkpoint\toperator\tinstance\tkind\tkey groups\tstates\tfiles\tcheckpointed\tstate size")
	status := 0
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		if err != nil {
			fmt.Fprintf(tw, "%d\t%v\n", id, err)
			status = 1
			continue
		}
		for _, h := range cp.Handles {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t[%d, %d) of %d\t%d\t%d\t%s\t%s\n",
				id, h.Operator, h.InstanceID, h.Kind, h.KeyGroupStart, h.KeyGroupEnd, h.MaxParallelism,
				len(h.States), len(h.Files)+len(h.Shared), humanBytes(h.CheckpointedSize), humanBytes(h.StateSize))
		}
	}
	tw.Flush()
	return status
}

// verifyCommand checks every file the completed checkpoints reference.
func verifyCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pebblestate verify <checkpoint root>\n\nReads every file of every completed checkpoint and checks its size and CRC-32C.\nExits 1 if any is missing or damaged.\n")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	st, err := openRoot(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate verify: %v\n", err)
		return 1
	}
	ctx := context.Background()
	ids, err := snapshot.Completed(ctx, st)
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate verify: %v\n", err)
		return 1
	}
	status := 0
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		if err == nil {
			err = snapshot.Verify(ctx, st, cp)
		}
		if err != nil {
			fmt.Fprintf(stdout, "checkpoint %d: BAD\n%v\n", id, err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "checkpoint %d: ok (%d handles)\n", id, len(cp.Handles))
	}
	if len(ids) == 0 {
		fmt.Fprintf(stdout, "%s: no completed checkpoint\n", fs.Arg(0))
	}
	return status
}

// openRoot opens an existing checkpoint root.
func openRoot(dir string) (*snapshot.Local, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return snapshot.NewLocal(dir)
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
