package jetstream

import (
	"context"
	"errors"
	"fmt"
	"maps"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
)

// ErrPosition reports positions a Source cannot resume from: a key group
// of its range without one, or one beyond the stream's end or before its
// first retained message.
var ErrPosition = errors.New("jetstream: bad source position")

// DefaultBatch is SourceOptions.Batch's default.
const DefaultBatch = 1024

// SourceOptions configure a Source.
type SourceOptions struct {
	// Stream is the stream's name. Required.
	Stream string
	// Subjects is the stream's subject scheme. Required.
	Subjects Subjects
	// KeyGroups is the subtask's key-group range: the Source consumes
	// these key groups' subjects only. Required, non-empty.
	KeyGroups backend.KeyGroupRange
	// Positions are the stream sequences of the last message applied per
	// key group, as Source.Positions returned them at the checkpoint the
	// subtask restored from. Nil starts at the stream's beginning; else
	// every key group of KeyGroups must have one (0 for a key group that
	// had applied nothing).
	Positions map[int]uint64
	// Batch is how many messages the consumer asks the server for at once.
	// Default: DefaultBatch.
	Batch int
}

// Message is one message of a Source.
type Message struct {
	// KeyGroup is the key group the message's subject names.
	KeyGroup int
	// Seq is the message's stream sequence, its position.
	Seq uint64
	// Data is the message's payload; it is the caller's.
	Data []byte
	// Pending is how many messages of the Source's subjects the stream
	// held after this one when it was delivered: 0 means caught up.
	Pending uint64
}

// Source reads the messages of a key-group range of a partitioned stream
// exactly once across restores: it keeps, per key group, the stream
// sequence of the last message it returned, and skips every message at or
// below it.
//
// A subtask calls Next, applies the message to its state, and calls Next
// again; at a checkpoint barrier (between two messages) it stores
// Positions with the checkpoint, as per-key-group state, so that they
// rescale with the key groups. Restored at any parallelism, each subtask
// passes its key groups' positions to NewSource.
//
// It reads with one ordered consumer over all its subjects, starting after
// the smallest position, so messages arrive in stream order. A Source is
// used by one goroutine.
type Source struct {
	o    SourceOptions
	pos  map[int]uint64
	cons natsjs.Consumer
	it   natsjs.MessagesContext
}

// NewSource checks the positions against the stream and starts consuming.
func NewSource(ctx context.Context, js natsjs.JetStream, o SourceOptions) (*Source, error) {
	if o.Stream == "" {
		return nil, errors.New("jetstream: source stream name is empty")
	}
	if err := o.Subjects.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: source of %s: %w", o.Stream, err)
	}
	if o.KeyGroups.IsEmpty() || o.KeyGroups.Start < 0 {
		return nil, fmt.Errorf("jetstream: source of %s: key-group range %v is empty", o.Stream, o.KeyGroups)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	s, err := js.Stream(ctx, o.Stream)
	if err != nil {
		return nil, fmt.Errorf("jetstream: source stream %s: %w", o.Stream, err)
	}
	state := s.CachedInfo().State
	pos, start, err := checkPositions(o, state)
	if err != nil {
		return nil, err
	}
	cfg := natsjs.OrderedConsumerConfig{FilterSubjects: o.Subjects.Filter(o.KeyGroups)}
	if start > 1 {
		cfg.DeliverPolicy = natsjs.DeliverByStartSequencePolicy
		cfg.OptStartSeq = start
	}
	cons, err := js.OrderedConsumer(ctx, o.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream: consumer of %s %v: %w", o.Stream, o.KeyGroups, err)
	}
	it, err := cons.Messages(natsjs.PullMaxMessages(o.Batch))
	if err != nil {
		return nil, fmt.Errorf("jetstream: consume %s %v: %w", o.Stream, o.KeyGroups, err)
	}
	return &Source{o: o, pos: pos, cons: cons, it: it}, nil
}

// checkPositions returns the positions to resume from and the first
// stream sequence to read.
func checkPositions(o SourceOptions, st natsjs.StreamState) (map[int]uint64, uint64, error) {
	pos := make(map[int]uint64, o.KeyGroups.Len())
	for kg := range o.Positions {
		if !o.KeyGroups.Contains(kg) {
			return nil, 0, fmt.Errorf("%w: key group %d is outside the source's range %v", ErrPosition, kg, o.KeyGroups)
		}
	}
	start := uint64(0)
	for kg := o.KeyGroups.Start; kg < o.KeyGroups.End; kg++ {
		p, ok := o.Positions[kg]
		if o.Positions != nil && !ok {
			return nil, 0, fmt.Errorf("%w: no position for key group %d of stream %s", ErrPosition, kg, o.Stream)
		}
		if p > st.LastSeq {
			return nil, 0, fmt.Errorf("%w: key group %d position %d is beyond stream %s's last sequence %d",
				ErrPosition, kg, p, o.Stream, st.LastSeq)
		}
		if st.Msgs > 0 && p+1 < st.FirstSeq {
			return nil, 0, fmt.Errorf("%w: key group %d position %d is before stream %s's first retained sequence %d: messages it has not applied are gone",
				ErrPosition, kg, p, o.Stream, st.FirstSeq)
		}
		pos[kg] = p
		if kg == o.KeyGroups.Start || p+1 < start {
			start = p + 1
		}
	}
	return pos, start, nil
}

// Next returns the next message not yet applied, waiting for one until ctx
// ends. The message counts as applied once Next returns it: Positions
// includes it.
func (s *Source) Next(ctx context.Context) (Message, error) {
	for {
		m, err := s.it.Next(natsjs.NextContext(ctx))
		if err != nil {
			return Message{}, fmt.Errorf("jetstream: next of %s %v: %w", s.o.Stream, s.o.KeyGroups, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return Message{}, fmt.Errorf("jetstream: message of %s: %w", s.o.Stream, err)
		}
		kg, err := s.o.Subjects.KeyGroup(m.Subject())
		if err != nil || !s.o.KeyGroups.Contains(kg) {
			return Message{}, fmt.Errorf("jetstream: stream %s delivered subject %q outside range %v", s.o.Stream, m.Subject(), s.o.KeyGroups)
		}
		seq := md.Sequence.Stream
		if seq <= s.pos[kg] {
			continue
		}
		s.pos[kg] = seq
		return Message{KeyGroup: kg, Seq: seq, Data: m.Data(), Pending: md.NumPending}, nil
	}
}

// Positions returns, for every key group of the range, the stream
// sequence of the last message Next returned (or the restored position,
// or 0). The map is the caller's.
func (s *Source) Positions() map[int]uint64 { return maps.Clone(s.pos) }

// Close stops consuming.
func (s *Source) Close() { s.it.Stop() }
