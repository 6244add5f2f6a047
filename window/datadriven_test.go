package window_test

// The datadriven window scenarios in testdata/, one file per assigner,
// each run with full and with incremental checkpoints. Keys are strings,
// values int64, and a window's result is the sorted list of its values.
//
//	open assigner=<tumbling|sliding|session> [size=<n>] [slide=<n>] [offset=<n>] [gap=<n>]
//	     [lateness=<n>] [parallelism=<p>] [list]
//	                                           open a job of p subtasks (default 1); list:
//	                                           NewList, whose results are in the order added
//	process                                    one element per input line: <key> <ts> <value>
//	watermark <wm>                             advance every subtask's watermark
//	stats                                      the counters summed over the subtasks
//	checkpoint                                 checkpoint every subtask
//	restore parallelism=<p>                    restore the last checkpoint at parallelism p
//	                                           and give it the watermark of that checkpoint
//
// Every command prints what was emitted, "emit <key> <window> <values>",
// and given to the late output, "late <key> ts=<ts> v=<v>", in order, or
// "ok".

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/window"
)

func TestDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		for _, incremental := range []bool{false, true} {
			t.Run(map[bool]string{false: "full", true: "incremental"}[incremental], func(t *testing.T) {
				e := &ddEnv{incremental: incremental}
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					out, err := e.run(t, d)
					if err != nil {
						out += "error: " + err.Error() + "\n"
					}
					return out
				})
			})
		}
	})
}

type ddEnv struct {
	incremental bool
	j           *job
	nOut, nLate int
	cp          []snapshot.Handle
	cpWM        int64
}

func (e *ddEnv) run(t *testing.T, d *datadriven.TestData) (string, error) {
	if d.Cmd != "open" && e.j == nil {
		return "", fmt.Errorf("no job: open one first")
	}
	var err error
	switch d.Cmd {
	case "open":
		var kind string
		d.ScanArgs(t, "assigner", &kind)
		n := func(name string) int64 {
			var v int64
			d.MaybeScanArgs(t, name, &v)
			return v
		}
		var a window.Assigner
		switch kind {
		case "tumbling":
			a = window.Tumbling(n("size"), n("offset"))
		case "sliding":
			a = window.Sliding(n("size"), n("slide"), n("offset"))
		case "session":
			a = window.Session(n("gap"))
		default:
			return "", fmt.Errorf("unknown assigner %q", kind)
		}
		p := 1
		d.MaybeScanArgs(t, "parallelism", &p)
		e.j = newJob(t, a, n("lateness"), e.incremental)
		e.j.list = d.HasArg("list")
		e.nOut, e.nLate = 0, 0
		err = e.j.open(p)
	case "process":
		for line := range strings.Lines(d.Input) {
			f := strings.Fields(line)
			if len(f) != 3 {
				return "", fmt.Errorf("process: want <key> <ts> <value>, got %q", line)
			}
			ts, err1 := strconv.ParseInt(f[1], 10, 64)
			v, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return "", fmt.Errorf("process: bad line %q", line)
			}
			if err = e.j.process(f[0], v, ts); err != nil {
				break
			}
		}
	case "watermark":
		wm, perr := strconv.ParseInt(d.CmdArgs[0].Key, 10, 64)
		if perr != nil {
			return "", perr
		}
		err = e.j.advance(wm)
	case "stats":
		var s window.Stats
		for _, sub := range e.j.subs {
			st := sub.op.Stats()
			s.Elements += st.Elements
			s.LateDropped += st.LateDropped
			s.Fired += st.Fired
			s.LateFired += st.LateFired
		}
		return fmt.Sprintf("elements=%d late-dropped=%d fired=%d late-fired=%d watermark=%d\n",
			s.Elements, s.LateDropped, s.Fired, s.LateFired, e.j.wm), nil
	case "checkpoint":
		e.cp, err = e.j.checkpoint()
		e.cpWM = e.j.wm
		if err == nil {
			return fmt.Sprintf("checkpoint %d at watermark %d\n", e.j.cpID, e.cpWM), nil
		}
	case "restore":
		var p int
		d.ScanArgs(t, "parallelism", &p)
		err = e.j.restore(e.cp, p, e.cpWM)
	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	var b strings.Builder
	for _, r := range e.j.out[e.nOut:] {
		fmt.Fprintf(&b, "emit %s\n", r)
	}
	for _, l := range e.j.late[e.nLate:] {
		fmt.Fprintf(&b, "late %s ts=%d v=%d\n", l.key, l.ts, l.v)
	}
	e.nOut, e.nLate = len(e.j.out), len(e.j.late)
	if b.Len() == 0 && err == nil {
		return "ok\n", nil
	}
	return b.String(), err
}
