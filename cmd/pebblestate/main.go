// Command pebblestate is pebblestate's command-line tool.
//
// Usage:
//
//	pebblestate demo [flags]       run a keyed Nexmark job on the backend and check its state survives a reopen
//	pebblestate inspect <root>     list the completed checkpoints of a checkpoint root, their handles and states
//	pebblestate verify <root>      check every completed checkpoint's metadata and the size and checksum of its files
//	pebblestate help               print usage
//
// A checkpoint root is a directory or an s3://bucket/prefix URL (with the
// AWS SDK's usual environment: AWS_ACCESS_KEY_ID, AWS_REGION,
// AWS_ENDPOINT_URL_S3 and so on, or ?endpoint=http://host:port).
//
// Run "pebblestate demo -h" for the demo's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pebblestate/pebblestate/backend"
	_ "github.com/pebblestate/pebblestate/snapshot/s3store" // s3:// checkpoint roots
)

const usage = `pebblestate is the command-line tool of pebblestate, a keyed-state backend on Pebble.

Usage:

	pebblestate <command> [flags]

Commands:

	demo    run a keyed Nexmark job: P parallel subtasks per operator, one
	        backend each, with Value, List and Map state; then close every
	        backend, reopen it and check each key's state against an
	        in-memory tally
	inspect [-json] <checkpoint root | chk-<id> directory>
	        list the completed checkpoints: creation time and, per
	        instance, its kind, key groups, sizes and states (name, kind,
	        codecs, TTL)
	verify <checkpoint root | chk-<id> directory>
	        check every completed checkpoint's metadata and read every file
	        it uses for its size and CRC-32C; exit 1 unless there is a
	        checkpoint and all are good
	help    print this message

A checkpoint root is a directory or s3://bucket/prefix (credentials, region
and endpoint from the AWS environment, or ?endpoint=http://host:port).

Run "pebblestate <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0 for
// success, 1 for failure, 2 for bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "demo":
		return demoCommand(rest, stdout, stderr)
	case "inspect":
		return inspectCommand(rest, stdout, stderr)
	case "verify":
		return verifyCommand(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "pebblestate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: pebblestate demo [flags]

Generates Nexmark events and runs them through two keyed operators, each as
-parallelism subtasks with one backend per subtask on its own key groups:
bids keyed by auction (bid count in Value state, recent prices in List
state, bids per channel in Map state) and auctions keyed by seller
(auctions per category in Map state). Prints throughput, then closes and
reopens every backend and checks every key against an in-memory tally;
exits 1 on any difference.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg := demoConfig{}
	fs.IntVar(&cfg.events, "events", 200_000, "number of Nexmark events to process")
	fs.IntVar(&cfg.parallelism, "parallelism", 2, "parallel subtasks per operator")
	fs.IntVar(&cfg.maxParallelism, "max-parallelism", backend.DefaultMaxParallelism, "number of key groups")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the Nexmark stream")
	fs.StringVar(&cfg.dir, "dir", "", "directory for the backends, absent or empty (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the backends' directories after the run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pebblestate demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.events < 1 || cfg.parallelism < 1 || cfg.parallelism > cfg.maxParallelism {
		fmt.Fprintf(stderr, "pebblestate demo: need -events >= 1 and 1 <= -parallelism <= -max-parallelism (%d)\n", cfg.maxParallelism)
		return 2
	}

	cleanup, err := prepareDir(&cfg.dir)
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate demo: %v\n", err)
		return 1
	}
	err = runDemo(cfg, stdout)
	if *keep {
		fmt.Fprintf(stdout, "state kept in %s\n", cfg.dir)
	} else if cerr := cleanup(); cerr != nil {
		fmt.Fprintf(stderr, "pebblestate demo: remove %s: %v\n", cfg.dir, cerr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate demo: %v\n", err)
		return 1
	}
	return 0
}

// prepareDir makes *dir ready for a run: a new temporary directory if it
// is empty, else the named directory, which must be absent or empty. The
// returned function removes what the run created.
func prepareDir(dir *string) (cleanup func() error, err error) {
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "pebblestate-demo-"); err != nil {
			return nil, err
		}
		return func() error { return os.RemoveAll(*dir) }, nil
	}
	entries, err := os.ReadDir(*dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return nil, err
		}
		return func() error { return os.RemoveAll(*dir) }, nil
	case err != nil:
		return nil, err
	case len(entries) > 0:
		return nil, fmt.Errorf("-dir %s is not empty: the demo checks its state against this run only, so it needs a fresh directory", *dir)
	}
	return func() error {
		return errors.Join(
			os.RemoveAll(filepath.Join(*dir, opBidsByAuction)),
			os.RemoveAll(filepath.Join(*dir, opAuctionsBySeller)))
	}, nil
}
