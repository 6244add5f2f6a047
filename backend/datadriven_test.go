package backend_test

// Datadriven scenarios: testdata/ttl/* (state TTL) and
// testdata/checkpoint/* (snapshots and restore), one file per feature, in
// the style of Pebble's datadriven tests. Each file is a list of commands
// and their exact output; `go test ./backend -run Datadriven -rewrite`
// rewrites the outputs, which must then be read, not trusted.
//
// A ttl file runs once; a checkpoint file runs twice, as subtests full
// and incremental (Options.IncrementalCheckpoints), against the same
// expected output, so both kinds of checkpoint must behave alike. The one
// exception is the mode command, for a file that is about one kind.
//
// Every file gets a ttl.ManualClock starting at t=0 (an instant well after
// the epoch), one checkpoint storage, and any number of backends with
// string keys, each in its own temporary directory, named (default "b").
// States are registered on every open backend, and again on every backend
// opened, reopened or restored later, as an operator's code would.
//
// Commands (arguments in brackets are optional):
//
//	open [name=b] [max-parallelism=128] [groups=[0,64)] [incremental] [retain=1]
//	     a new backend; incremental only in ttl files (a checkpoint file
//	     gets its mode from the subtest); retain is the number of completed
//	     checkpoints kept, for the whole file
//	register name=s kind=value|list|map|reducing|aggregating [namespaced]
//	     [ttl=100ms] [update=OnCreateAndWrite|OnReadAndWrite|Disabled]
//	     [visibility=NeverReturnExpired|ReturnExpiredIfNotCleanedUp]
//	     [cleanup=(background,access,full-snapshot)] [access-size=5] [every-key]
//	     cleanup strategies default to none (background cleanup off), so
//	     that only reads and the cleanup command remove expired entries
//	put state=s k=a [ns=w] [mk=x] v=1 | v=(1,2) [replace]
//	     Update (value), Add or AddAll (list; Update with replace), Put of
//	     mk (map), Add of each (reducing: a sum; aggregating: a sum and a
//	     count)
//	get state=s k=a|k=(a,b) [ns=w] [mk=x]   the entry, or "absent"
//	entries state=s k=a [ns=w]               a map's entries, or "empty"
//	remove state=s k=a [ns=w] mk=x           a map entry
//	clear state=s k=a [ns=w]
//	merge state=s k=a into=w from=(x,y)      MergeNamespaces
//	keys state=s [ns=w]                      KeysInNamespace, sorted: what is
//	                                         stored, expired or not
//	dump                                     get of every stored key of every
//	                                         state in every namespace the file
//	                                         used ("absent" or "empty" if it
//	                                         expired); it reads, as get does
//	keygroup k=(a,b)                         the key groups of keys
//	advance 60ms                             the clock; prints the time
//	flush, close, reopen, cleanup, metrics   on every open backend (reopen:
//	                                         every backend, open or closed)
//	     cleanup runs CleanupExpired and prints what metrics prints: the
//	     expired entries removed by reads, access and background cleanup
//	checkpoint 1                 a completed checkpoint of every open backend
//	                             (Backend.Checkpoint when only one is open)
//	snapshot 2                   the synchronous part only, on every open backend
//	run 2                        the asynchronous part of snapshot 2
//	complete 2                   run if not yet, commit, notify the backends
//	abort 2                      release or NotifyCheckpointAborted
//	checkpoints                  the chk- directories stored: completed or not
//	verify-storage               "ok" if storage holds the completed checkpoints,
//	                             each verified (sizes, checksums), and nothing else
//	restore 1|latest name=r [groups=[0,64)]   a new backend from a checkpoint
//	mode full|incremental        in a checkpoint file: skip the other mode
//
// A keyed command goes to the open backend whose key groups hold the key,
// or to on=NAME. The commands on backends take on=NAME (or on=(list));
// without it, unkeyed commands act on every open backend, and
// print one line per backend, prefixed by its name, when several are open.
// An error is printed as "error: ..." with the test's directory as $TMP.

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

func TestDatadrivenTTL(t *testing.T) {
	datadriven.Walk(t, "testdata/ttl", func(t *testing.T, path string) {
		e := newDDEnv(t, "")
		datadriven.RunTest(t, path, e.run)
	})
}

func TestDatadrivenCheckpoint(t *testing.T) {
	datadriven.Walk(t, "testdata/checkpoint", func(t *testing.T, path string) {
		for _, mode := range []string{"full", "incremental"} {
			t.Run(mode, func(t *testing.T) {
				e := newDDEnv(t, mode)
				datadriven.RunTest(t, path, e.run)
			})
		}
	})
}

// ddT0 is where the clock of every file starts.
var ddT0 = time.UnixMilli(1_700_000_000_000)

// ddEnv is the world of one scenario file.
type ddEnv struct {
	t        *testing.T
	mode     string // "full" or "incremental" in a checkpoint file, "" in a ttl file
	root     string
	clock    *ttl.ManualClock
	st       *snapshot.Local
	retain   int
	dirs     int
	backends map[string]*ddBackend
	first    *ddBackend
	specs    []ddSpec
	used     map[string]bool // namespaces the file named, for dump
	snaps    map[int64]*ddSnapshot
}

// ddBackend is one named backend; b is nil while it is closed.
type ddBackend struct {
	name   string
	opts   backend.Options
	b      *backend.Backend[string]
	states map[string]ddState
}

// ddSpec is a registered state.
type ddSpec struct {
	name, kind string
	namespaced bool
	ttl        ttl.Config
}

// ddSnapshot is a snapshot taken by the snapshot command.
type ddSnapshot struct {
	on      []*ddBackend
	async   []*backend.AsyncSnapshot
	handles []snapshot.Handle // once run
}

func newDDEnv(t *testing.T, mode string) *ddEnv {
	root := t.TempDir()
	st, err := snapshot.NewLocal(filepath.Join(root, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	e := &ddEnv{
		t: t, mode: mode, root: root, clock: ttl.NewManualClock(ddT0), st: st, retain: 1,
		backends: map[string]*ddBackend{}, used: map[string]bool{"": true}, snaps: map[int64]*ddSnapshot{},
	}
	t.Cleanup(func() {
		for _, s := range e.snaps {
			for _, a := range s.async {
				a.Release()
			}
		}
		for _, b := range e.open() {
			if err := b.b.Close(); err != nil {
				t.Errorf("close %s: %v", b.name, err)
			}
		}
	})
	return e
}

// run runs one command and returns its output.
func (e *ddEnv) run(t *testing.T, d *datadriven.TestData) string {
	var out strings.Builder
	if err := e.dispatch(t, d, &out); err != nil {
		fmt.Fprintf(&out, "error: %s\n", strings.ReplaceAll(err.Error(), e.root, "$TMP"))
	}
	return out.String()
}

func (e *ddEnv) dispatch(t *testing.T, d *datadriven.TestData, out *strings.Builder) error {
	switch d.Cmd {
	case "open":
		return e.cmdOpen(t, d)
	case "register":
		return e.cmdRegister(t, d)
	case "put", "get", "entries", "remove", "clear", "merge":
		return e.cmdKeyed(t, d, out)
	case "keys", "dump":
		return e.cmdRead(t, d, out)
	case "keygroup":
		var ks []string
		d.ScanArgs(t, "k", &ks)
		for _, k := range ks {
			kg, err := backend.KeyGroupOf(backend.String, k, e.maxParallelism())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s: %d\n", k, kg)
		}
		return nil
	case "advance":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(t, "advance takes a duration: advance 60ms")
		}
		by, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(t, "advance: %v", err)
		}
		e.clock.Advance(by)
		fmt.Fprintf(out, "t=%v\n", e.clock.Now().Sub(ddT0))
		return nil
	case "flush", "close", "reopen", "cleanup", "metrics":
		return e.cmdEach(t, d, out)
	case "checkpoint", "snapshot", "run", "complete", "abort":
		return e.cmdCheckpoint(t, d)
	case "checkpoints":
		return e.cmdCheckpoints(out)
	case "verify-storage":
		return e.cmdVerifyStorage(out)
	case "restore":
		return e.cmdRestore(t, d, out)
	case "mode":
		if e.mode == "" {
			d.Fatalf(t, "mode is for checkpoint files")
		}
		if len(d.CmdArgs) != 1 || !slices.Contains([]string{"full", "incremental"}, d.CmdArgs[0].Key) {
			d.Fatalf(t, "mode full|incremental")
		}
		if d.CmdArgs[0].Key != e.mode {
			t.Skipf("%s: this file is only for %s checkpoints", d.Pos, d.CmdArgs[0].Key)
		}
		return nil
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return nil
}

// ---------------------------------------------------------------------------
// Backends and states

// open returns the open backends, sorted by name.
func (e *ddEnv) open() []*ddBackend {
	var bs []*ddBackend
	for _, name := range slices.Sorted(maps.Keys(e.backends)) {
		if b := e.backends[name]; b.b != nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// maxParallelism is that of the first backend opened: every backend of a
// file should have the same.
func (e *ddEnv) maxParallelism() int {
	if e.first == nil {
		return backend.DefaultMaxParallelism
	}
	return e.first.opts.MaxParallelism
}

// newDir returns a new directory for a backend.
func (e *ddEnv) newDir(name string) string {
	e.dirs++
	return filepath.Join(e.root, fmt.Sprintf("%s-%d", name, e.dirs))
}

// options reads the options open and restore share.
func (e *ddEnv) options(t *testing.T, d *datadriven.TestData, name string) backend.Options {
	opts := backend.Options{
		Dir: e.newDir(name), Clock: e.clock, MaxParallelism: e.maxParallelism(),
		TTLSweepInterval: -1, RetainedCheckpoints: e.retain, Logger: testSlog(t),
		IncrementalCheckpoints: e.mode == "incremental",
	}
	d.MaybeScanArgs(t, "max-parallelism", &opts.MaxParallelism)
	if d.HasArg("groups") {
		var s string
		d.ScanArgs(t, "groups", &s)
		if _, err := fmt.Sscanf(s, "[%d,%d)", &opts.KeyGroups.Start, &opts.KeyGroups.End); err != nil {
			d.Fatalf(t, "groups=%s: want groups=[start,end)", s)
		}
	}
	return opts
}

// name reads the name= argument, default b, and checks that no open
// backend has it.
func (e *ddEnv) name(t *testing.T, d *datadriven.TestData) string {
	name := "b"
	d.MaybeScanArgs(t, "name", &name)
	if b, ok := e.backends[name]; ok && b.b != nil {
		d.Fatalf(t, "backend %s is open", name)
	}
	return name
}

func (e *ddEnv) cmdOpen(t *testing.T, d *datadriven.TestData) error {
	name := e.name(t, d)
	if d.HasArg("retain") {
		d.ScanArgs(t, "retain", &e.retain)
	}
	opts := e.options(t, d, name)
	if d.HasArg("incremental") {
		if e.mode != "" {
			d.Fatalf(t, "a checkpoint file runs in both modes: no incremental argument")
		}
		opts.IncrementalCheckpoints = true
	}
	b, err := backend.Open(backend.String, opts)
	if err != nil {
		return err
	}
	return e.attach(&ddBackend{name: name, opts: opts, b: b})
}

// attach registers the file's states on a backend just opened and adds it.
func (e *ddEnv) attach(b *ddBackend) error {
	e.backends[b.name] = b
	if e.first == nil {
		e.first = b
	}
	b.states = map[string]ddState{}
	for _, sp := range e.specs {
		s, err := ddRegister(b.b, sp)
		if err != nil {
			return fmt.Errorf("%s: register %s: %w", b.name, sp.name, err)
		}
		b.states[sp.name] = s
	}
	return nil
}

func (e *ddEnv) cmdRegister(t *testing.T, d *datadriven.TestData) error {
	var sp ddSpec
	d.ScanArgs(t, "name", &sp.name)
	d.ScanArgs(t, "kind", &sp.kind)
	sp.namespaced = d.HasArg("namespaced")
	d.MaybeScanArgs(t, "ttl", &sp.ttl.TTL)
	if d.HasArg("update") {
		var s string
		d.ScanArgs(t, "update", &s)
		u, ok := map[string]ttl.UpdateType{"OnCreateAndWrite": ttl.OnCreateAndWrite, "OnReadAndWrite": ttl.OnReadAndWrite, "Disabled": ttl.Disabled}[s]
		if !ok {
			d.Fatalf(t, "update=%s: want OnCreateAndWrite, OnReadAndWrite or Disabled", s)
		}
		sp.ttl.Update = u
	}
	if d.HasArg("visibility") {
		var s string
		d.ScanArgs(t, "visibility", &s)
		v, ok := map[string]ttl.Visibility{"NeverReturnExpired": ttl.NeverReturnExpired, "ReturnExpiredIfNotCleanedUp": ttl.ReturnExpiredIfNotCleanedUp}[s]
		if !ok {
			d.Fatalf(t, "visibility=%s: want NeverReturnExpired or ReturnExpiredIfNotCleanedUp", s)
		}
		sp.ttl.Visibility = v
	}
	var cleanup []string
	d.MaybeScanArgs(t, "cleanup", &cleanup)
	c := &sp.ttl.Cleanup
	c.DisableBackground = !slices.Contains(cleanup, "background")
	c.FullSnapshot = slices.Contains(cleanup, "full-snapshot")
	c.OnAccess.Enabled = slices.Contains(cleanup, "access")
	for _, s := range cleanup {
		if !slices.Contains([]string{"background", "full-snapshot", "access"}, s) {
			d.Fatalf(t, "cleanup=%s: want background, full-snapshot or access", s)
		}
	}
	d.MaybeScanArgs(t, "access-size", &c.OnAccess.Size)
	c.OnAccess.OnEveryKey = d.HasArg("every-key")

	for _, b := range e.open() {
		s, err := ddRegister(b.b, sp)
		if err != nil {
			return err
		}
		b.states[sp.name] = s
	}
	e.specs = slices.DeleteFunc(e.specs, func(o ddSpec) bool { return o.name == sp.name })
	e.specs = append(e.specs, sp)
	return nil
}

// pick returns the backends named by on=, or every open backend.
func (e *ddEnv) pick(t *testing.T, d *datadriven.TestData) []*ddBackend {
	if !d.HasArg("on") {
		return e.open()
	}
	var names []string
	d.ScanArgs(t, "on", &names)
	var bs []*ddBackend
	for _, n := range names {
		b, ok := e.backends[n]
		if !ok {
			d.Fatalf(t, "no backend %s", n)
		}
		bs = append(bs, b)
	}
	return bs
}

// owner returns the backend for key k: on= if given, else the open one
// whose key groups hold k (or the only open one, which will refuse it).
func (e *ddEnv) owner(t *testing.T, d *datadriven.TestData, k string) (*ddBackend, error) {
	if d.HasArg("on") {
		bs := e.pick(t, d)
		if len(bs) != 1 {
			d.Fatalf(t, "a keyed command takes one backend")
		}
		if bs[0].b == nil {
			return nil, fmt.Errorf("backend %s is closed", bs[0].name)
		}
		return bs[0], nil
	}
	open := e.open()
	if len(open) == 1 {
		return open[0], nil
	}
	kg, err := backend.KeyGroupOf(backend.String, k, e.maxParallelism())
	if err != nil {
		return nil, err
	}
	var owners []*ddBackend
	for _, b := range open {
		if b.b.KeyGroups().Contains(kg) {
			owners = append(owners, b)
		}
	}
	if len(owners) != 1 {
		d.Fatalf(t, "key %s (key group %d) is owned by %d open backends: say on=", k, kg, len(owners))
	}
	return owners[0], nil
}

// state returns the handle of state= on b.
func (e *ddEnv) state(t *testing.T, d *datadriven.TestData, b *ddBackend) ddState {
	var name string
	d.ScanArgs(t, "state", &name)
	s, ok := b.states[name]
	if !ok {
		d.Fatalf(t, "no state %s on %s", name, b.name)
	}
	return s
}

// ---------------------------------------------------------------------------
// Keyed commands

func (e *ddEnv) cmdKeyed(t *testing.T, d *datadriven.TestData, out *strings.Builder) error {
	var ks []string
	d.ScanArgs(t, "k", &ks)
	if len(ks) != 1 && d.Cmd != "get" {
		d.Fatalf(t, "%s takes one key", d.Cmd)
	}
	var ns, mk string
	d.MaybeScanArgs(t, "ns", &ns)
	d.MaybeScanArgs(t, "mk", &mk)
	e.used[ns] = true
	for _, k := range ks {
		b, err := e.owner(t, d, k)
		if err != nil {
			return err
		}
		s := e.state(t, d, b)
		if err := b.b.SetCurrentKey(k); err != nil {
			return err
		}
		if err := s.setNS(ns); err != nil {
			return err
		}
		res, err := e.keyed(t, d, s, mk)
		if err != nil {
			return err
		}
		if len(ks) > 1 {
			fmt.Fprintf(out, "%s: ", k)
		}
		out.WriteString(res)
	}
	return nil
}

// keyed runs a keyed command on s, whose key and namespace are set.
func (e *ddEnv) keyed(t *testing.T, d *datadriven.TestData, s ddState, mk string) (string, error) {
	switch d.Cmd {
	case "put":
		var vs []string
		d.ScanArgs(t, "v", &vs)
		if d.HasArg("replace") {
			return "", s.replace(vs)
		}
		return "", s.put(mk, vs)
	case "get":
		v, err := s.get(mk)
		return v + "\n", err
	case "entries":
		es, err := s.entries()
		if len(es) == 0 {
			return "empty\n", err
		}
		return strings.Join(es, "\n") + "\n", err
	case "remove":
		return "", s.remove(mk)
	case "clear":
		return "", s.clear()
	case "merge":
		var into string
		var from []string
		d.ScanArgs(t, "into", &into)
		d.ScanArgs(t, "from", &from)
		e.used[into] = true
		for _, f := range from {
			e.used[f] = true
		}
		return "", s.merge(into, from)
	}
	panic("unreachable")
}

// cmdRead runs keys and dump.
func (e *ddEnv) cmdRead(t *testing.T, d *datadriven.TestData, out *strings.Builder) error {
	bs := e.pick(t, d)
	for _, b := range bs {
		if b.b == nil {
			return fmt.Errorf("backend %s is closed", b.name)
		}
		prefix := ""
		if len(bs) > 1 {
			prefix = b.name + ": "
		}
		if d.Cmd == "keys" {
			var ns string
			d.MaybeScanArgs(t, "ns", &ns)
			e.used[ns] = true
			ks, err := e.state(t, d, b).keys(ns)
			if err != nil {
				return err
			}
			if len(ks) == 0 {
				ks = []string{"none"}
			}
			fmt.Fprintf(out, "%s%s\n", prefix, strings.Join(ks, " "))
			continue
		}
		if err := e.dump(b, prefix, out); err != nil {
			return err
		}
	}
	return nil
}

// dump prints every entry of b: state, namespace, key and value, in that
// order, sorted.
func (e *ddEnv) dump(b *ddBackend, prefix string, out *strings.Builder) error {
	empty := true
	for _, name := range slices.Sorted(maps.Keys(b.states)) {
		s := b.states[name]
		for _, ns := range slices.Sorted(maps.Keys(e.used)) {
			ks, err := s.keys(ns)
			if err != nil {
				continue // a namespace of another state
			}
			label := name
			if ns != "" {
				label += "@" + ns
			}
			for _, k := range ks {
				if err := b.b.SetCurrentKey(k); err != nil {
					return err
				}
				if err := s.setNS(ns); err != nil {
					return err
				}
				v, err := s.entries()
				if err != nil { // not a map
					var one string
					one, err = s.get("")
					v = []string{one}
				} else if len(v) == 0 {
					v = []string{"empty"}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s%s %s: %s\n", prefix, label, k, strings.Join(v, " "))
				empty = false
			}
		}
	}
	if empty {
		fmt.Fprintf(out, "%sempty\n", prefix)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Unkeyed commands

// cmdEach runs flush, close, reopen, cleanup and metrics.
func (e *ddEnv) cmdEach(t *testing.T, d *datadriven.TestData, out *strings.Builder) error {
	bs := e.pick(t, d)
	if d.Cmd == "reopen" && !d.HasArg("on") {
		bs = nil
		for _, name := range slices.Sorted(maps.Keys(e.backends)) {
			bs = append(bs, e.backends[name])
		}
	}
	if len(bs) == 0 {
		d.Fatalf(t, "%s: no backend", d.Cmd)
	}
	ctx := context.Background()
	for _, b := range bs {
		prefix := ""
		if len(bs) > 1 {
			prefix = b.name + ": "
		}
		if b.b == nil && d.Cmd != "reopen" {
			return fmt.Errorf("backend %s is closed", b.name)
		}
		var err error
		switch d.Cmd {
		case "flush":
			err = b.b.Flush()
		case "close", "reopen":
			if b.b != nil {
				err = b.b.Close()
				b.b, b.states = nil, nil
			}
			if err == nil && d.Cmd == "reopen" {
				if b.b, err = backend.Open(backend.String, b.opts); err == nil {
					err = e.attach(b)
				}
			}
		case "cleanup":
			err = b.b.CleanupExpired(ctx)
			fallthrough
		case "metrics":
			m := b.b.TTLMetrics()
			fmt.Fprintf(out, "%sremoved: read=%d access=%d background=%d\n",
				prefix, m.ReadRemoved, m.AccessRemoved, m.BackgroundRemoved)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	return nil
}
