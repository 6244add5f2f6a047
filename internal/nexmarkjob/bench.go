package nexmarkjob

import (
	"context"
	"fmt"
	"slices"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/jetstream"
)

// What the benchmarks (package bench) need to drive the job from outside:
// fresh streams, the input streams of a query, and the events in them.

// InputStream is a partitioned input stream of the job: its name and
// subject scheme, for a jetstream.Source.
type InputStream struct {
	Name     string
	Subjects jetstream.Subjects
}

// QueryInputs returns the input streams the first stage of query reads
// (of QueryNames), or an error naming an unknown query. The second stages
// of q5 and q7 read the first stages' partials, which are not inputs.
func QueryInputs(query string) ([]InputStream, error) {
	var out []InputStream
	for _, o := range operators {
		if o.query != query || o.second {
			continue
		}
		in := InputStream{Name: o.input.name, Subjects: o.input.subjects}
		if !slices.Contains(out, in) {
			out = append(out, in)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("unknown query %q", query)
	}
	return out, nil
}

// ResetStreams deletes every stream of the job and makes it anew, empty,
// as RunDemo does before it produces.
func ResetStreams(ctx context.Context, js natsjs.JetStream) error {
	return resetStreams(ctx, js)
}

// ResetOutputs deletes the streams the job writes (the first stages'
// partials and the results) and makes them anew, keeping the input
// streams, so that the job can run again from the start over the same
// input: a second run would otherwise read the first run's partials.
func ResetOutputs(ctx context.Context, js natsjs.JetStream) error {
	return resetStreams(ctx, js, q5Partials, q7Partials, resultsStream)
}

// EventPayload returns the encoded event (nexmark.DecodeEvent's input) a
// message of an input stream holds, and false for a watermark.
func EventPayload(msg []byte) ([]byte, bool) {
	if len(msg) == 0 || msg[0] != tagEvent {
		return nil, false
	}
	return msg[1:], true
}
