package window_test

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/pebblestate/pebblestate/window"
)

// modelJob is Flink's event-time window semantics written plainly, with
// no timers: per key, the windows holding state and their values. A window
// fires when the watermark first reaches its max timestamp, fires again at
// once for each element added after that, and is forgotten when the
// watermark reaches its max timestamp plus the lateness. A window is due
// (its firing is pending) from an element added before the watermark
// reached its max timestamp until it fires: after a restore at a lower
// watermark than the checkpoint's, a window that fired before is not due
// again unless an element comes for it while the watermark is below its
// max timestamp, and then it fires when the watermark reaches that again
// (as Flink's, whose operator registers a window's timer with each
// element; ours registers it once per key and window and process, which
// must not change this). An element none
// of whose windows takes it is late if the watermark passed it by the
// lateness (it always has, unless it is in no window at all). Session windows that
// overlap or touch a new element's window merge with it.
type modelJob struct {
	a        window.Assigner
	lateness int64
	wm       int64
	wins     map[string]map[window.Window]modelWindow
	out      []result
	late     []lateElem
}

// modelWindow is a window's values and whether its firing is pending.
type modelWindow struct {
	vals []int64
	due  bool
}

func newModel(a window.Assigner, lateness int64) *modelJob {
	return &modelJob{a: a, lateness: lateness, wm: math.MinInt64, wins: map[string]map[window.Window]modelWindow{}}
}

func (m *modelJob) clone() *modelJob {
	c := *m
	c.wins = map[string]map[window.Window]modelWindow{}
	for k, ws := range m.wins {
		c.wins[k] = maps.Clone(ws)
	}
	c.out, c.late = slices.Clone(m.out), slices.Clone(m.late)
	return &c
}

func (m *modelJob) gone(w window.Window) bool { return w.End-1+m.lateness <= m.wm }

// windows lists the windows of an element at ts, by the assigner's
// definition rather than its arithmetic: every window [s, s+size) with s
// congruent to the offset modulo the slide that holds ts.
func (m *modelJob) windows(ts int64) []window.Window {
	s := m.a.String()
	var size, slide, offset, gap int64
	switch {
	case parse(s, "tumbling(size=%d,offset=%d)", &size, &offset):
		slide = size
	case parse(s, "sliding(size=%d,slide=%d,offset=%d)", &size, &slide, &offset):
	case parse(s, "session(gap=%d)", &gap):
		return []window.Window{{Start: ts, End: ts + gap}}
	}
	var out []window.Window
	for start := ts - size - 2*slide; start <= ts; start++ {
		if ((start-offset)%slide+slide)%slide == 0 && ts < start+size {
			out = append(out, window.Window{Start: start, End: start + size})
		}
	}
	return out
}

// process adds an element and returns the windows that took it.
func (m *modelJob) process(key string, v, ts int64) (taken []window.Window) {
	ws := m.wins[key]
	if ws == nil {
		ws = map[window.Window]modelWindow{}
		m.wins[key] = ws
	}
	for _, w := range m.windows(ts) {
		vals := []int64{v}
		if m.a.Merging() {
			// Absorb every session window the new one overlaps or touches,
			// until none is left.
			for changed := true; changed; {
				changed = false
				for o, ovs := range ws {
					if o.Start <= w.End && o.End >= w.Start {
						w = window.Window{Start: min(w.Start, o.Start), End: max(w.End, o.End)}
						vals = append(vals, ovs.vals...)
						delete(ws, o)
						changed = true
					}
				}
			}
		}
		if m.gone(w) {
			continue
		}
		taken = append(taken, w)
		vals = append(vals, ws[w].vals...)
		slices.Sort(vals)
		ws[w] = modelWindow{vals: vals, due: w.End-1 > m.wm}
		if w.End-1 <= m.wm {
			m.out = append(m.out, result{key, w, slices.Clone(vals)})
		}
	}
	// An element in no window (between sliding windows with gaps) is late
	// only if the watermark passed it by the lateness.
	if len(taken) == 0 && ts+m.lateness <= m.wm {
		m.late = append(m.late, lateElem{key, ts, v})
	}
	return taken
}

func (m *modelJob) advance(wm int64) {
	if wm <= m.wm {
		return
	}
	m.wm = wm
	for _, key := range slices.Sorted(maps.Keys(m.wins)) {
		ws := m.wins[key]
		for _, w := range slices.SortedFunc(maps.Keys(ws), func(a, b window.Window) int { return int(a.Start - b.Start) }) {
			if mw := ws[w]; mw.due && w.End-1 <= wm {
				m.out = append(m.out, result{key, w, slices.Clone(mw.vals)})
				ws[w] = modelWindow{vals: mw.vals}
			}
			if m.gone(w) {
				delete(ws, w)
			}
		}
	}
}

// parse scans s by format and reports whether it matched.
func parse(s, format string, args ...any) bool {
	n, err := fmt.Sscanf(s, format, args...)
	return err == nil && n == len(args)
}
