package nexmarkjob

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/jetstream"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// operatorSpec is one operator of the job: its name, the stream it reads
// and how its logic is built.
type operatorSpec struct {
	name   string
	query  string // the query it computes (part of)
	input  stream
	second bool // reads a first stage's partials and watermarks
	open   func(env) (logic, error)
}

// operators are the job's operators, in the order the coordinator lists
// them, with the query each belongs to.
var operators = []operatorSpec{
	{name: "q5-counts", query: "q5", input: bidsByAuction, open: newQ5Counts},
	{name: "q5-top", query: "q5", input: q5Partials, second: true, open: func(e env) (logic, error) { return newTop(e, "q5") }},
	{name: "q7-highest", query: "q7", input: bidsByAuction, open: newQ7Highest},
	{name: "q7-top", query: "q7", input: q7Partials, second: true, open: func(e env) (logic, error) { return newTop(e, "q7") }},
	{name: "q8-new-sellers", query: "q8", input: peopleByID, open: newPeople},
	{name: "q11-sessions", query: "q11", input: bidsByBidder, open: newSessions},
	{name: "ttl-recent-auctions", query: "ttl", input: bidsByBidder, open: newRecent},
}

// QueryOf returns the query operator belongs to, or "".
func QueryOf(operator string) string {
	for _, o := range operators {
		if o.name == operator {
			return o.query
		}
	}
	return ""
}

// QueryNames are the names of the job's queries, in order.
var QueryNames = []string{"q5", "q7", "q8", "q11", "ttl"}

// subtask runs one operator subtask on its goroutine: it reads its key
// groups' subjects, applies each message, advances its watermark, and
// takes its part of each checkpoint between two messages.
type subtask struct {
	env
	spec  operatorSpec
	id    checkpoint.Subtask
	p     int
	logic logic
	src   *jetstream.Source
	sink  *jetstream.Sink

	// Watermarks. A first stage keeps one per key group of its input
	// (wm); a second stage keeps, per key group of its input, one per key
	// group of the first stage (up), since each first-stage subtask
	// reports the watermark of its key groups to every subject.
	wm  map[int]int64
	up  map[int][]int64
	cur int64

	barriers chan *checkpoint.Pending
	// interrupt cancels the context the subtask waits for its next
	// message under, so that a barrier sent meanwhile is taken at once.
	interrupt atomic.Pointer[context.CancelFunc]
	applied   atomic.Int64 // messages applied
	events    atomic.Int64 // of them, input events (not watermarks or partials)
}

// positions encodes, per key group, what a restore needs to resume it: the
// last applied stream sequence, then the watermark(s).
func (s *subtask) positions(st *opstate.State) error {
	pos := s.src.Positions()
	for kg := s.kgs.Start; kg < s.kgs.End; kg++ {
		wms := s.up[kg]
		if !s.spec.second {
			wms = []int64{s.wm[kg]}
		}
		if err := st.SetPosition(kg, encodePosition(pos[kg], wms)); err != nil {
			return err
		}
	}
	return nil
}

// encodePosition is a key group's position: the last applied sequence,
// then its watermark(s) (FORMAT.md).
func encodePosition(seq uint64, wms []int64) []byte {
	b := binary.AppendUvarint(nil, seq)
	for _, w := range wms {
		b = binary.AppendVarint(b, w)
	}
	return b
}

// restorePositions reads what positions wrote; st nil means a fresh start.
func (s *subtask) restorePositions(st *opstate.State) (map[int]uint64, error) {
	s.wm, s.up = map[int]int64{}, map[int][]int64{}
	var seqs map[int]uint64
	if st != nil {
		seqs = map[int]uint64{}
	}
	for kg := s.kgs.Start; kg < s.kgs.End; kg++ {
		if s.spec.second {
			s.up[kg] = make([]int64, s.out.maxParallelism)
			for i := range s.up[kg] {
				s.up[kg][i] = noWatermark
			}
		} else {
			s.wm[kg] = noWatermark
		}
		if st == nil {
			continue
		}
		b, ok := st.Position(kg)
		if !ok {
			return nil, fmt.Errorf("%s: the checkpoint has no position for key group %d", s.id, kg)
		}
		seq, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%s: key group %d: %w", s.id, kg, errBadMessage)
		}
		seqs[kg] = seq
		want := 1
		if s.spec.second {
			want = s.out.maxParallelism
		}
		ws, err := varints(b[n:], want)
		if err != nil {
			return nil, fmt.Errorf("%s: key group %d: %w", s.id, kg, err)
		}
		if s.spec.second {
			s.up[kg] = ws
		} else {
			s.wm[kg] = ws[0]
		}
	}
	s.cur = s.minWatermark()
	return seqs, nil
}

func (s *subtask) minWatermark() int64 {
	m := int64(math.MaxInt64)
	for kg := s.kgs.Start; kg < s.kgs.End; kg++ {
		if s.spec.second {
			for _, w := range s.up[kg] {
				m = min(m, w)
			}
		} else {
			m = min(m, s.wm[kg])
		}
	}
	return m
}

// apply handles one message.
func (s *subtask) apply(m jetstream.Message) error {
	s.applied.Add(1)
	if len(m.Data) == 0 {
		return fmt.Errorf("%s: %w: empty message %d", s.id, errBadMessage, m.Seq)
	}
	tag, body := m.Data[0], m.Data[1:]
	switch {
	case tag == tagEvent && !s.spec.second:
		s.events.Add(1)
		return s.logic.input(body)
	case tag == tagPartial && s.spec.second:
		return s.logic.input(body)
	case tag == tagWatermark && !s.spec.second:
		v, err := varints(body, 1)
		if err != nil {
			return err
		}
		s.wm[m.KeyGroup] = max(s.wm[m.KeyGroup], v[0])
	case tag == tagUpstream && s.spec.second:
		v, err := varints(body, 3)
		if err != nil {
			return err
		}
		start, end := int(v[0]), int(v[1])
		if start < 0 || end > len(s.up[m.KeyGroup]) || start >= end {
			return fmt.Errorf("%s: %w: upstream range [%d, %d)", s.id, errBadMessage, start, end)
		}
		ws := s.up[m.KeyGroup]
		for i := start; i < end; i++ {
			ws[i] = max(ws[i], v[2])
		}
	default:
		return fmt.Errorf("%s: %w: tag %q", s.id, errBadMessage, tag)
	}
	if wm := s.minWatermark(); wm > s.cur {
		s.cur = wm
		return s.logic.watermark(wm)
	}
	return nil
}

// done reports whether every key group reached the end of the stream.
func (s *subtask) done() bool { return s.cur == math.MaxInt64 }

// run applies messages until ctx ends, taking its part of each checkpoint
// sent on barriers. It reports on finished once the stream's end is
// applied and its results are flushed, and goes on serving checkpoints.
func (s *subtask) run(ctx context.Context, st snapshot.Storage, finished chan<- checkpoint.Subtask) error {
	reported := false
	wait := s.waitContext(ctx)
	defer func() { (*s.interrupt.Load())() }()
	for {
		if s.done() && !reported {
			if err := s.sink.Flush(ctx); err != nil {
				return err
			}
			finished <- s.id
			reported = true
		}
		if reported {
			select {
			case p := <-s.barriers:
				if err := s.barrier(ctx, st, p); err != nil {
					return err
				}
				continue
			case <-ctx.Done():
				return nil
			}
		}
		select {
		case p := <-s.barriers:
			if err := s.barrier(ctx, st, p); err != nil {
				return err
			}
			continue
		default:
		}
		m, err := s.src.Next(wait)
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			// A barrier came (sendBarrier): wait under a new context.
			wait = s.waitContext(ctx)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := s.apply(m); err != nil {
			return err
		}
	}
}

// waitContext returns a context under ctx that sendBarrier cancels.
func (s *subtask) waitContext(ctx context.Context) context.Context {
	wait, cancel := context.WithCancel(ctx)
	s.interrupt.Store(&cancel)
	return wait
}

// sendBarrier hands the subtask checkpoint p and wakes it if it waits for
// a message. It gives up when ctx ends (the subtask failed).
func (s *subtask) sendBarrier(ctx context.Context, p *checkpoint.Pending) error {
	select {
	case s.barriers <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Sent before the cancel: the subtask, woken, finds it.
	if cancel := s.interrupt.Load(); cancel != nil {
		(*cancel)()
	}
	return nil
}

// barrier takes the subtask's part of checkpoint p: its results so far
// made durable, its keyed snapshot's synchronous part and its positions.
func (s *subtask) barrier(ctx context.Context, st snapshot.Storage, p *checkpoint.Pending) error {
	start := time.Now()
	if err := s.sink.Flush(ctx); err != nil {
		_ = p.Decline(s.id, err)
		return err
	}
	ops, err := opstate.New(s.out.maxParallelism, s.p, s.id.Index)
	if err == nil {
		err = s.positions(ops)
	}
	var op *opstate.Snapshot
	if err == nil {
		op, err = ops.Snapshot()
	}
	var keyed *backend.AsyncSnapshot
	if err == nil {
		keyed, err = s.b.Snapshot(p.ID(), st)
	}
	if err != nil {
		return p.Decline(s.id, err)
	}
	return p.Acknowledge(s.id, checkpoint.SubtaskState{Keyed: keyed, Operator: op, SyncDuration: time.Since(start)})
}
