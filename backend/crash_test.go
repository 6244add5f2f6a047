package backend_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
)

// Crash tests: a child process (this test binary, running TestCrashChild)
// writes state in a directory and reports its progress on stdout; the
// parent kills it with SIGKILL at a random point, reopens the directory and
// checks that everything the child reported durable is there, and that
// what survived is a prefix of what was written. Rounds repeat on the same
// directory, each child continuing from what it finds.
//
// DESIGN.md section 3 allows the write-ahead log to be off by default only
// while tests cover a crash; TestCrashWALOff is that test. TestCrashWAL
// checks the claim of Options.EnableWAL that writes survive a process crash
// with the WAL on.

const (
	crashEnvDir  = "PEBBLESTATE_CRASH_CHILD_DIR"
	crashEnvMode = "PEBBLESTATE_CRASH_CHILD_MODE"

	crashModeWALOff = "wal-off" // default options; Flush every crashFlushEvery units
	crashModeWAL    = "wal"     // EnableWAL; no flushes; report every unit

	crashFlushEvery = 250
	crashLists      = 16 // list keys; unit i appends to list i % crashLists
	crashMaps       = 32 // map keys; unit i puts into map i % crashMaps

	crashProgressKey = int64(-1)
	crashListBase    = int64(1) << 40
	crashMapBase     = int64(1) << 41
)

// A unit of work i writes, in this order:
//
//	v[i] = i                          value state, key i
//	l[crashListBase + i%crashLists] += "e<i>"   list state
//	m[crashMapBase + i%crashMaps][i] = "m<i>"   map state
//	progress[-1] = i + 1              value state
//
// Whatever survives a crash is a prefix of the sequence of writes, so with
// progress P, units below P are complete and at most unit P is partly
// there.

func crashOptions(dir, mode string) backend.Options {
	// The defaults otherwise: WAL off unless the mode turns it on.
	return backend.Options{Dir: dir, EnableWAL: mode == crashModeWAL}
}

type crashStates struct {
	progress *backend.Value[int64, backend.VoidNamespace, int64]
	v        *backend.Value[int64, backend.VoidNamespace, int64]
	l        *backend.List[int64, backend.VoidNamespace, string]
	m        *backend.Map[int64, backend.VoidNamespace, int64, string]
}

func crashRegister(b *backend.Backend[int64]) (crashStates, error) {
	var s crashStates
	var err error
	if s.progress, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "progress", Codec: backend.Int64}); err != nil {
		return s, err
	}
	if s.v, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}); err != nil {
		return s, err
	}
	if s.l, err = backend.GetList(b, backend.ListDescriptor[string]{Name: "l", Codec: backend.String}); err != nil {
		return s, err
	}
	if s.m, err = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String}); err != nil {
		return s, err
	}
	return s, nil
}

func crashReadProgress(b *backend.Backend[int64], s crashStates) (int64, error) {
	if err := b.SetCurrentKey(crashProgressKey); err != nil {
		return 0, err
	}
	p, _, err := s.progress.Get()
	return p, err
}

// crashWantList is list j after units [0, p).
func crashWantList(j, p int64) []string {
	var out []string
	for i := j; i < p; i += crashLists {
		out = append(out, "e"+strconv.FormatInt(i, 10))
	}
	return out
}

// TestCrashChild is the child process of the crash tests; it is skipped
// unless the parent set its environment.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the child of TestCrashWALOff and TestCrashWAL; not run on its own")
	}
	if err := crashChild(dir, os.Getenv(crashEnvMode), os.Stdout); err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		t.Fatal(err)
	}
}

// crashChild writes units until it is killed, reporting progress on out
// (unbuffered: each line is one write to the pipe, made after what it
// reports has happened).
func crashChild(dir, mode string, out io.Writer) error {
	b, err := backend.Open(backend.Int64, crashOptions(dir, mode))
	if err != nil {
		return err
	}
	s, err := crashRegister(b)
	if err != nil {
		return err
	}
	p, err := crashReadProgress(b, s)
	if err != nil {
		return err
	}
	// Unit p may be partly there: repair the lists, whose appends are not
	// idempotent. Values and map entries are rewritten with the same
	// contents.
	for j := range int64(crashLists) {
		if err := b.SetCurrentKey(crashListBase + j); err != nil {
			return err
		}
		if err := s.l.Update(crashWantList(j, p)); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "start %d\n", p)
	deadline := time.Now().Add(time.Minute) // never outlive a lost parent for long
	for i := p; ; i++ {
		if err := b.SetCurrentKey(i); err != nil {
			return err
		}
		if err := s.v.Update(i); err != nil {
			return err
		}
		if err := b.SetCurrentKey(crashListBase + i%crashLists); err != nil {
			return err
		}
		if err := s.l.Add("e" + strconv.FormatInt(i, 10)); err != nil {
			return err
		}
		if err := b.SetCurrentKey(crashMapBase + i%crashMaps); err != nil {
			return err
		}
		if err := s.m.Put(i, "m"+strconv.FormatInt(i, 10)); err != nil {
			return err
		}
		if err := b.SetCurrentKey(crashProgressKey); err != nil {
			return err
		}
		if err := s.progress.Update(i + 1); err != nil {
			return err
		}
		switch mode {
		case crashModeWAL:
			fmt.Fprintf(out, "written %d\n", i+1)
		case crashModeWALOff:
			if (i+1)%crashFlushEvery == 0 {
				if err := b.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(out, "flushed %d\n", i+1)
			}
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		if time.Now().After(deadline) {
			return errors.New("not killed within a minute")
		}
	}
}

// crashReport is what a child said before it died.
type crashReport struct {
	start   int64 // progress it found
	flushed int64 // last "flushed" count
	written int64 // last "written" count
	lines   []string
}

// crashRound runs one child in dir, kills it once it has reported killAt
// flushes (wal-off) or writes (wal) and a random short delay has passed,
// or, if killAt < 0, at a random moment in its first 300ms (perhaps while
// it opens the directory), and returns what it reported, all of its output
// read to the end.
func crashRound(t *testing.T, r *rand.Rand, dir, mode string, killAt int) crashReport {
	t.Helper()
	cmd := exec.Command(childBinary(t), "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvMode+"="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var rep crashReport
	parse := func(line string) {
		rep.lines = append(rep.lines, line)
		if len(rep.lines) > 20 {
			rep.lines = rep.lines[1:]
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return
		}
		switch f[0] {
		case "start":
			rep.start = n
			rep.flushed = max(rep.flushed, n) // the child found it durable
		case "flushed":
			rep.flushed = max(rep.flushed, n)
		case "written":
			rep.written = max(rep.written, n)
		}
	}
	seen := 0
	timeout := time.After(60 * time.Second)
	var early <-chan time.Time
	if killAt < 0 {
		early = time.After(time.Duration(r.IntN(300_000)) * time.Microsecond)
	}
	killed := false
	for !killed {
		select {
		case <-early:
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("child exited before it was killed; last output:\n%s\nstderr:\n%s", strings.Join(rep.lines, "\n"), stderr.String())
			}
			parse(line)
			if strings.HasPrefix(line, "error") {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child failed: %s\nstderr:\n%s", line, stderr.String())
			}
			if strings.HasPrefix(line, "flushed ") || strings.HasPrefix(line, "written ") {
				seen++
			}
			if killAt >= 0 && seen >= killAt {
				time.Sleep(time.Duration(r.IntN(20_000)) * time.Microsecond)
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child made no progress in 60s; last output:\n%s\nstderr:\n%s", strings.Join(rep.lines, "\n"), stderr.String())
		}
	}
	// Everything the child wrote to the pipe before it died was reported
	// after the fact it reports: read it all.
	for line := range lines {
		parse(line)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Success() {
		t.Fatalf("child was not killed: %v", err)
	}
	return rep
}

// crashVerify reopens dir and checks the units, returning the progress
// found. Every unit below the progress must be complete; only unit
// progress may be partly there; nothing beyond it.
func crashVerify(t *testing.T, r *rand.Rand, dir, mode string) int64 {
	t.Helper()
	b, err := backend.Open(backend.Int64, crashOptions(dir, mode))
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	s, err := crashRegister(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := crashReadProgress(b, s)
	if err != nil {
		t.Fatal(err)
	}

	// Values: the keys present are [0, p) and perhaps p.
	var keys []int64
	for k, err := range s.v.KeysInNamespace(backend.VoidNamespace{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if int64(len(keys)) < p || int64(len(keys)) > p+1 {
		t.Fatalf("progress %d but %d value keys", p, len(keys))
	}
	for i, k := range keys {
		if k != int64(i) {
			t.Fatalf("progress %d: value key %d at position %d", p, k, i)
		}
	}
	check := func(i int64) {
		if err := b.SetCurrentKey(i); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.v.Get()
		if err != nil || (i < p && !ok) || (ok && v != i) {
			t.Fatalf("progress %d: value of key %d = %d, %v, %v", p, i, v, ok, err)
		}
	}
	for i := max(0, p-300); i <= p; i++ {
		check(i)
	}
	for range 200 {
		if p > 0 {
			check(r.Int64N(p))
		}
	}

	// Lists: exactly the units below p, and perhaps unit p.
	for j := range int64(crashLists) {
		if err := b.SetCurrentKey(crashListBase + j); err != nil {
			t.Fatal(err)
		}
		got, err := s.l.Get()
		if err != nil {
			t.Fatal(err)
		}
		want := crashWantList(j, p)
		if p%crashLists == j && len(got) == len(want)+1 {
			want = crashWantList(j, p+1)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("progress %d: list %d has %d elements, want %d\n got %q\nwant %q", p, j, len(got), len(want), got, want)
		}
	}

	// Maps: entries of the units below p, and perhaps unit p.
	for j := range int64(crashMaps) {
		if err := b.SetCurrentKey(crashMapBase + j); err != nil {
			t.Fatal(err)
		}
		want := j
		for e, err := range s.m.Entries() {
			if err != nil {
				t.Fatal(err)
			}
			if e.Key == p && want == p {
				// unit p's entry, which may or may not be there
			} else if e.Key != want || e.Key >= p {
				t.Fatalf("progress %d: map %d has entry %d, want %d next", p, j, e.Key, want)
			}
			if e.Value != "m"+strconv.FormatInt(e.Key, 10) {
				t.Fatalf("progress %d: map %d entry %d = %q", p, j, e.Key, e.Value)
			}
			want += crashMaps
		}
		if want < p {
			t.Fatalf("progress %d: map %d ends before entry %d", p, j, want)
		}
	}
	return p
}

func crashRounds(t *testing.T, mode string) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	var lost []string
	for round := range rounds {
		killAt := r.IntN(5) // flushes; 0: right after the child started
		if mode == crashModeWAL {
			killAt = r.IntN(600) // writes
		}
		if r.IntN(6) == 0 {
			killAt = -1 // at a random moment, perhaps during Open
		}
		rep := crashRound(t, r, dir, mode, killAt)
		p := crashVerify(t, r, dir, mode)
		t.Logf("round %d: kill at %d; child started at %d, reported flushed %d written %d; reopened with progress %d",
			round, killAt, rep.start, rep.flushed, rep.written, p)
		if p < rep.start {
			t.Fatalf("round %d: progress went back from %d to %d", round, rep.start, p)
		}
		if p < rep.flushed {
			t.Fatalf("round %d: the child reported %d units flushed, but only %d survived the crash", round, rep.flushed, p)
		}
		if mode == crashModeWAL && p < rep.written {
			// Not fatal, so that every round reports.
			lost = append(lost, fmt.Sprintf("round %d: reported %d written, %d survived (%d lost)", round, rep.written, p, rep.written-p))
		}
	}
	if len(lost) > 0 {
		// Pebble's LogWriter keeps NoSync records in 32 KiB blocks in
		// memory and writes them to the file behind the writer, only when a
		// block fills or a sync is requested (record/log_writer.go,
		// SyncRecordGeneralized and flushLoop), so the newest acknowledged
		// writes can die with the process. Options.EnableWAL documents
		// this; what must hold is checked above: nothing flushed or
		// replayed is lost, and what survives is a clean prefix.
		t.Logf("with EnableWAL, the newest writes died with the process, as documented:\n  %s", strings.Join(lost, "\n  "))
	}
}

// TestCrashWALOff kills a writer running with the default options (WAL
// off): every unit written before the last reported Flush must survive.
func TestCrashWALOff(t *testing.T) { crashRounds(t, crashModeWALOff) }

// TestCrashWAL kills a writer running with EnableWAL and no flushes: what
// the reopened log holds is a clean prefix of the writes, progress never
// goes back, and the loss of the newest writes is reported.
func TestCrashWAL(t *testing.T) { crashRounds(t, crashModeWAL) }
