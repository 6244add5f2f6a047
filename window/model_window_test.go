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
// watermark reaches its max timestamp plus the lateness; an element none
// of whose windows takes it is late if the watermark passed it by the
// lateness (it always has, unless it is in no window at all). Session windows that
// overlap or touch a new element's window merge with it.
type modelJob struct {
	a        window.Assigner
	lateness int64
	wm       int64
	wins     map[string]map[window.Window][]int64
	out      []result
	late     []lateElem
}

func newModel(a window.Assigner, lateness int64) *modelJob {
	return &modelJob{a: a, lateness: lateness, wm: math.MinInt64, wins: map[string]map[window.Window][]int64{}}
}

func (m *modelJob) clone() *modelJob {
	c := *m
	c.wins = map[string]map[window.Window][]int64{}
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

func (m *modelJob) process(key string, v, ts int64) {
	ws := m.wins[key]
	if ws == nil {
		ws = map[window.Window][]int64{}
		m.wins[key] = ws
	}
	taken := false
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
						vals = append(vals, ovs...)
						delete(ws, o)
						changed = true
					}
				}
			}
		}
		if m.gone(w) {
			continue
		}
		taken = true
		vals = append(vals, ws[w]...)
		slices.Sort(vals)
		ws[w] = vals
		if w.End-1 <= m.wm {
			m.out = append(m.out, result{key, w, slices.Clone(vals)})
		}
	}
	// An element in no window (between sliding windows with gaps) is late
	// only if the watermark passed it by the lateness.
	if !taken && ts+m.lateness <= m.wm {
		m.late = append(m.late, lateElem{key, ts, v})
	}
}

func (m *modelJob) advance(wm int64) {
	if wm <= m.wm {
		return
	}
	old := m.wm
	m.wm = wm
	for _, key := range slices.Sorted(maps.Keys(m.wins)) {
		ws := m.wins[key]
		for _, w := range slices.SortedFunc(maps.Keys(ws), func(a, b window.Window) int { return int(a.Start - b.Start) }) {
			if max := w.End - 1; max > old && max <= wm {
				m.out = append(m.out, result{key, w, slices.Clone(ws[w])})
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
