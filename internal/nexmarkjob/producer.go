package nexmarkjob

import (
	"context"
	"fmt"
	"math"
	"strconv"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/nexmark"
	"github.com/pebblestate/pebblestate/jetstream"
)

// Input says which events the job reads and how they are spread in time.
type Input struct {
	// Events is how many events the stream has.
	Events int64
	// Nexmark configures the generator (seed, event rate).
	Nexmark nexmark.Config
	// MaxParallelism is every operator's number of key groups, and so the
	// number of subjects of each partitioned stream.
	MaxParallelism int
	// WatermarkEvery is how many events pass between two watermarks.
	WatermarkEvery int64
}

// Events returns the input's events, for the reference run.
func (in Input) events() []nexmark.Event {
	g := nexmark.New(in.Nexmark)
	out := make([]nexmark.Event, in.Events)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Produce publishes the input's events and watermarks to the job's input
// streams, each message with an id of its own, so that producing again
// publishes nothing new. progress, if set, is called with the events
// published so far.
func Produce(ctx context.Context, js natsjs.JetStream, in Input, progress func(int64)) error {
	sink := jetstream.NewSink(js, jetstream.SinkOptions{})
	g := nexmark.New(in.Nexmark)
	var buf []byte
	publish := func(s stream, key int64, id string, msg []byte) error {
		kg, err := backend.KeyGroupOf(backend.Int64, key, in.MaxParallelism)
		if err != nil {
			return err
		}
		return sink.Publish(ctx, s.subjects.For(kg), id, msg)
	}
	watermark := func(i, wm int64) error {
		buf = watermarkMessage(buf[:0], wm)
		for _, s := range inputStreams {
			for kg := range in.MaxParallelism {
				id := "w" + strconv.FormatInt(i, 10) + "/" + strconv.Itoa(kg)
				if err := sink.Publish(ctx, s.subjects.For(kg), id, buf); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var last int64
	for n := range in.Events {
		e := g.Next()
		buf = eventMessage(buf[:0], &e)
		id := strconv.FormatInt(n, 10)
		var err error
		switch e.Kind {
		case nexmark.KindPerson:
			err = publish(peopleByID, e.Person.ID, "e"+id, buf)
		case nexmark.KindAuction:
			err = publish(peopleByID, e.Auction.Seller, "e"+id, buf)
		default:
			err = publish(bidsByAuction, e.Bid.Auction, "e"+id, buf)
			if err == nil {
				err = publish(bidsByBidder, e.Bid.Bidder, "e"+id, buf)
			}
		}
		if err != nil {
			return fmt.Errorf("produce event %d: %w", n, err)
		}
		last = e.Time().UnixMilli()
		if in.WatermarkEvery > 0 && (n+1)%in.WatermarkEvery == 0 {
			if err := watermark((n+1)/in.WatermarkEvery, last-2); err != nil {
				return fmt.Errorf("produce watermark after event %d: %w", n, err)
			}
			if progress != nil {
				progress(n + 1)
			}
		}
	}
	if err := watermark(math.MaxInt64, math.MaxInt64); err != nil {
		return fmt.Errorf("produce the final watermark: %w", err)
	}
	if err := sink.Flush(ctx); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	if progress != nil {
		progress(in.Events)
	}
	return nil
}
