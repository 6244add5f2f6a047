package nexmarkjob

import (
	"context"
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

// ensureStreams creates every stream of the job, each with the given
// duplicate window.
func ensureStreams(ctx context.Context, js natsjs.JetStream, dup time.Duration) error {
	for _, s := range allJobStreams {
		if _, err := jetstream.EnsureStream(ctx, js, jetstream.StreamOptions{
			Name: s.name, Subjects: s.subjects, DuplicateWindow: dup,
		}); err != nil {
			return err
		}
	}
	return nil
}
