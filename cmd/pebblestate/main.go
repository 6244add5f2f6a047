// Command pebblestate is pebblestate's command-line tool.
//
// Usage:
//
//	pebblestate demo [flags]       run Nexmark queries over JetStream, crash and rescale them, and check the results
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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/nexmarkjob"
	_ "github.com/pebblestate/pebblestate/snapshot/s3store" // s3:// checkpoint roots
)

const usage = `pebblestate is the command-line tool of pebblestate, a keyed-state backend on Pebble.

Usage:

	pebblestate <command> [flags]

Commands:

	demo    run five Nexmark queries over NATS JetStream with their state in
	        pebblestate, kill the job with SIGKILL after a checkpoint,
	        restart it at another parallelism, and compare the results
	        with an in-memory run
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
	if cfg := os.Getenv(nexmarkjob.ChildEnv); cfg != "" {
		// The demo runs its job as a child process of this binary.
		if err := nexmarkjob.RunChild(context.Background(), cfg, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "pebblestate demo job: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
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

Publishes a deterministic Nexmark stream to NATS JetStream (a server
embedded in this process unless -nats names one) and runs five queries on
it as a child process, each operator as -parallelism subtasks with one
backend each: q5 hot items (sliding windows, then the top auction per
window through a second JetStream stream), q7 highest bid (tumbling
windows, two stages), q8 new sellers (a window join of people and
auctions), q11 bidder sessions (session windows) and distinct auctions per
bidder over a TTL. Checkpoints go through the coordinator every -interval.
After the first completed checkpoint the child is killed with SIGKILL at a
random moment, then restarted from the newest checkpoint at
-restart-parallelism, runs to the end of the stream, and the results in
JetStream are compared with an in-memory run of the same queries. Exits 0
only if they are equal.

Flags:
`)
		fs.PrintDefaults()
	}
	cfg := demoConfig{}
	fs.Int64Var(&cfg.events, "events", 100_000, "number of Nexmark events")
	fs.IntVar(&cfg.parallelism, "parallelism", 2, "parallel subtasks per operator before the crash")
	fs.IntVar(&cfg.restart, "restart-parallelism", 3, "parallel subtasks per operator after the crash")
	fs.IntVar(&cfg.maxParallelism, "max-parallelism", backend.DefaultMaxParallelism, "number of key groups")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the Nexmark stream")
	fs.DurationVar(&cfg.interval, "interval", 500*time.Millisecond, "time between checkpoints")
	fs.StringVar(&cfg.dir, "dir", "", "work directory for the backends and the embedded server, absent or empty (default: a new temporary directory)")
	fs.StringVar(&cfg.checkpoints, "checkpoints", "", "checkpoint root, a directory or an s3://bucket/prefix URL, kept after the run (default: inside -dir, removed)")
	fs.StringVar(&cfg.nats, "nats", "", "URL of a NATS server with JetStream to use instead of the embedded one; its NEXMARK_* streams are replaced")
	keep := fs.Bool("keep", false, "keep -dir after the run")
	showProgress := progressFlag(fs, stderr)
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
	if cfg.events < 1 || cfg.parallelism < 1 || cfg.restart < 1 ||
		max(cfg.parallelism, cfg.restart) > cfg.maxParallelism || cfg.interval <= 0 {
		fmt.Fprintf(stderr, "pebblestate demo: need -events >= 1, -interval > 0 and 1 <= -parallelism, -restart-parallelism <= -max-parallelism (%d)\n", cfg.maxParallelism)
		return 2
	}
	cfg.progress = showProgress()
	cleanup, err := prepareDir(&cfg.dir)
	if err != nil {
		fmt.Fprintf(stderr, "pebblestate demo: %v\n", err)
		return 1
	}
	cfg.keepCheckpoints = cfg.checkpoints != "" || *keep
	if cfg.checkpoints == "" {
		cfg.checkpoints = filepath.Join(cfg.dir, "checkpoints")
	}
	err = runDemo(context.Background(), cfg, stdout, stderr)
	if *keep {
		fmt.Fprintf(stdout, "work directory kept in %s\n", cfg.dir)
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
		return nil, fmt.Errorf("-dir %s is not empty: the demo needs a fresh directory", *dir)
	}
	return func() error {
		entries, err := os.ReadDir(*dir)
		if err != nil {
			return err
		}
		var errs []error
		for _, e := range entries {
			errs = append(errs, os.RemoveAll(filepath.Join(*dir, e.Name())))
		}
		return errors.Join(errs...)
	}, nil
}
