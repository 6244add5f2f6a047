package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxPending is SinkOptions.MaxPending's default.
const DefaultMaxPending = 4096

// SinkOptions configure a Sink.
type SinkOptions struct {
	// MaxPending is how many published messages may await the server's
	// acknowledgement; Publish waits for the oldest beyond it. Default:
	// DefaultMaxPending.
	MaxPending int
}

// SinkStats count a Sink's messages.
type SinkStats struct {
	// Published counts messages the server acknowledged as new.
	Published uint64
	// Duplicates counts messages the server acknowledged as duplicates of
	// an earlier message with the same id, and dropped.
	Duplicates uint64
}

// Sink publishes results with exactly-once effect across restores: every
// message carries a message id (Nats-Msg-Id) that the caller derives from
// the result alone (say the query, key and window), never from when or by
// whom it was produced. A result produced again after a restore carries
// the same id, and the server drops it.
//
// Two conditions make this exact. The caller must Flush at each checkpoint
// barrier, before the checkpoint's synchronous part, so that every result
// of the input a checkpoint covers is stored before the checkpoint can
// complete. And a re-produced result must reach the server within the
// stream's duplicate window (StreamOptions.DuplicateWindow) of its first
// copy: the window must exceed the checkpoint interval plus the time a
// failed job takes to restart, or a late duplicate is stored twice.
//
// A Sink is used by one goroutine.
type Sink struct {
	js      natsjs.JetStream
	max     int
	pending []natsjs.PubAckFuture
	stats   SinkStats
}

// NewSink returns a sink publishing through js.
func NewSink(js natsjs.JetStream, o SinkOptions) *Sink {
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	return &Sink{js: js, max: o.MaxPending}
}

// Publish sends data to subject with message id id, without waiting for
// the acknowledgement. It returns the error of an earlier message if one
// failed; the caller should then restart from its last checkpoint.
func (s *Sink) Publish(ctx context.Context, subject, id string, data []byte) error {
	if id == "" {
		return errors.New("jetstream: sink message without an id")
	}
	if len(s.pending) >= s.max {
		if err := s.await(ctx, len(s.pending)/2); err != nil {
			return err
		}
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(natsjs.MsgIDHeader, id)
	f, err := s.js.PublishMsgAsync(msg)
	if errors.Is(err, natsjs.ErrTooManyStalledMsgs) && len(s.pending) > 0 {
		// The connection's limit of unacknowledged messages, shared by
		// every sink on it, is reached: wait for this sink's own, then
		// try once more.
		if err := s.Flush(ctx); err != nil {
			return err
		}
		f, err = s.js.PublishMsgAsync(msg)
	}
	if err != nil {
		return fmt.Errorf("jetstream: publish %s: %w", subject, err)
	}
	s.pending = append(s.pending, f)
	return nil
}

// Flush waits until the server acknowledged every message published so
// far, or ctx ends, and returns the first error.
func (s *Sink) Flush(ctx context.Context) error { return s.await(ctx, len(s.pending)) }

// Stats returns the counts of acknowledged messages.
func (s *Sink) Stats() SinkStats { return s.stats }

// await waits for the oldest n pending acknowledgements.
func (s *Sink) await(ctx context.Context, n int) error {
	for i := range n {
		f := s.pending[i]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				s.stats.Duplicates++
			} else {
				s.stats.Published++
			}
		case err := <-f.Err():
			s.drop(i + 1)
			return fmt.Errorf("jetstream: publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			s.drop(i)
			return fmt.Errorf("jetstream: flush: %w", ctx.Err())
		}
	}
	s.drop(n)
	return nil
}

// drop forgets the oldest n pending acknowledgements.
func (s *Sink) drop(n int) {
	k := copy(s.pending, s.pending[n:])
	clear(s.pending[k:])
	s.pending = s.pending[:k]
}
