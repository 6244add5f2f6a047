package nexmarkjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/jetstream"
)

// A stream of the job: its name and subject scheme.
type stream struct {
	name     string
	subjects jetstream.Subjects
}

// The job's streams. The input and partial streams are partitioned by key
// group; the results stream by query (resultSubject).
var (
	bidsByAuction = stream{"NEXMARK_BIDS_BY_AUCTION", jetstream.Subjects{Prefix: "nexmark.auction"}}
	bidsByBidder  = stream{"NEXMARK_BIDS_BY_BIDDER", jetstream.Subjects{Prefix: "nexmark.bidder"}}
	peopleByID    = stream{"NEXMARK_PEOPLE", jetstream.Subjects{Prefix: "nexmark.person"}}
	q5Partials    = stream{"NEXMARK_Q5_WINDOWS", jetstream.Subjects{Prefix: "nexmark.q5windows"}}
	q7Partials    = stream{"NEXMARK_Q7_WINDOWS", jetstream.Subjects{Prefix: "nexmark.q7windows"}}
	resultsStream = stream{"NEXMARK_RESULTS", jetstream.Subjects{Prefix: "nexmark.results"}}
	inputStreams  = []stream{bidsByAuction, bidsByBidder, peopleByID}
	allJobStreams = []stream{bidsByAuction, bidsByBidder, peopleByID, q5Partials, q7Partials, resultsStream}
)

// resultSubject is the subject of query q's results.
func resultSubject(q string) string { return resultsStream.subjects.Prefix + "." + q }

// duplicateWindow is how long the job's streams remember a message id. A
// restarted job publishes again what it published after its last
// checkpoint; the server drops it if it comes within this window.
const duplicateWindow = 10 * time.Minute

// resetStreams deletes the streams (by default, every stream of the job)
// and makes them anew, empty.
func resetStreams(ctx context.Context, js natsjs.JetStream, streams ...stream) error {
	if len(streams) == 0 {
		streams = allJobStreams
	}
	for _, s := range streams {
		if err := js.DeleteStream(ctx, s.name); err != nil && !errors.Is(err, natsjs.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", s.name, err)
		}
		if _, err := jetstream.EnsureStream(ctx, js, jetstream.StreamOptions{
			Name: s.name, Subjects: s.subjects, DuplicateWindow: duplicateWindow,
		}); err != nil {
			return err
		}
	}
	return nil
}
