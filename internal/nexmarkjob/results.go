package nexmarkjob

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// Collect reads every result in the results stream and returns them as
// answers, each list sorted as nexmark.Answers says.
func Collect(ctx context.Context, js natsjs.JetStream) (nexmark.Answers, error) {
	var a nexmark.Answers
	s, err := js.Stream(ctx, resultsStream.name)
	if err != nil {
		return a, fmt.Errorf("results: %w", err)
	}
	total := s.CachedInfo().State.Msgs
	if total == 0 {
		return a, nil
	}
	cons, err := js.OrderedConsumer(ctx, resultsStream.name, natsjs.OrderedConsumerConfig{})
	if err != nil {
		return a, fmt.Errorf("results: %w", err)
	}
	it, err := cons.Messages(natsjs.PullMaxMessages(4096))
	if err != nil {
		return a, fmt.Errorf("results: %w", err)
	}
	defer it.Stop()
	for range total {
		m, err := it.Next(natsjs.NextContext(ctx))
		if err != nil {
			return a, fmt.Errorf("results: %w", err)
		}
		query := strings.TrimPrefix(m.Subject(), resultsStream.subjects.Prefix+".")
		if err := decodeResult(&a, query, m.Data()); err != nil {
			return a, fmt.Errorf("results: %s: %w", m.Subject(), err)
		}
	}
	sortAnswers(&a)
	return a, nil
}

// decodeResult appends the result of query held in b to a.
func decodeResult(a *nexmark.Answers, query string, b []byte) error {
	n := map[string]int{"q5": 4, "q7": 5, "q8": 3, "q11": 4, "ttl": 3}[query]
	if n == 0 {
		return fmt.Errorf("%w: unknown query %q", errBadMessage, query)
	}
	vs := make([]int64, n)
	for i := range vs {
		v, k := binary.Varint(b)
		if k <= 0 {
			return fmt.Errorf("%w: %s result", errBadMessage, query)
		}
		vs[i], b = v, b[k:]
	}
	if query != "q8" && len(b) != 0 {
		return fmt.Errorf("%w: %s result has %d trailing bytes", errBadMessage, query, len(b))
	}
	switch query {
	case "q5":
		a.Q5 = append(a.Q5, nexmark.HotItem{Start: vs[0], End: vs[1], Auction: vs[2], Bids: vs[3]})
	case "q7":
		a.Q7 = append(a.Q7, nexmark.HighestBid{Start: vs[0], End: vs[1], Auction: vs[2], Bidder: vs[3], Price: vs[4]})
	case "q8":
		a.Q8 = append(a.Q8, nexmark.NewSeller{Start: vs[0], End: vs[1], Person: vs[2], Name: string(b)})
	case "q11":
		a.Q11 = append(a.Q11, nexmark.Session{Bidder: vs[0], Start: vs[1], End: vs[2], Bids: vs[3]})
	case "ttl":
		a.TTL = append(a.TTL, nexmark.RecentAuctions{N: vs[0], Bidder: vs[1], Distinct: vs[2]})
	}
	return nil
}

func sortAnswers(a *nexmark.Answers) {
	slices.SortFunc(a.Q5, func(x, y nexmark.HotItem) int { return cmp.Compare(x.Start, y.Start) })
	slices.SortFunc(a.Q7, func(x, y nexmark.HighestBid) int { return cmp.Compare(x.Start, y.Start) })
	slices.SortFunc(a.Q8, func(x, y nexmark.NewSeller) int {
		return cmp.Or(cmp.Compare(x.Start, y.Start), cmp.Compare(x.Person, y.Person))
	})
	slices.SortFunc(a.Q11, func(x, y nexmark.Session) int {
		return cmp.Or(cmp.Compare(x.Bidder, y.Bidder), cmp.Compare(x.Start, y.Start))
	})
	slices.SortFunc(a.TTL, func(x, y nexmark.RecentAuctions) int { return cmp.Compare(x.N, y.N) })
}

// keepOnly clears the answers of the queries not in only (unless only is
// empty).
func keepOnly(a *nexmark.Answers, only []string) {
	if len(only) == 0 {
		return
	}
	if !slices.Contains(only, "q5") {
		a.Q5 = nil
	}
	if !slices.Contains(only, "q7") {
		a.Q7 = nil
	}
	if !slices.Contains(only, "q8") {
		a.Q8 = nil
	}
	if !slices.Contains(only, "q11") {
		a.Q11 = nil
	}
	if !slices.Contains(only, "ttl") {
		a.TTL = nil
	}
}

// ErrMismatch reports results that differ from the reference.
var ErrMismatch = errors.New("results differ from the reference")

// Compare returns nil if got equals want query by query, else an error
// wrapping ErrMismatch that names the first difference of each query.
func Compare(got, want nexmark.Answers) error {
	var errs []error
	check := func(query string, g, w any) {
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		if reflect.DeepEqual(g, w) || (gv.Len() == 0 && wv.Len() == 0) {
			return
		}
		for i := range max(gv.Len(), wv.Len()) {
			var gi, wi any = "nothing", "nothing"
			if i < gv.Len() {
				gi = gv.Index(i).Interface()
			}
			if i < wv.Len() {
				wi = wv.Index(i).Interface()
			}
			if !reflect.DeepEqual(gi, wi) {
				errs = append(errs, fmt.Errorf("%s: %d results, want %d; result %d is %+v, want %+v",
					query, gv.Len(), wv.Len(), i, gi, wi))
				return
			}
		}
	}
	check("q5", got.Q5, want.Q5)
	check("q7", got.Q7, want.Q7)
	check("q8", got.Q8, want.Q8)
	check("q11", got.Q11, want.Q11)
	check("ttl", got.TTL, want.TTL)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n%w", ErrMismatch, errors.Join(errs...))
}

// Reference computes the input's answers in memory, and how long that
// took: the upper bound of the job's speed.
func Reference(in Input, q nexmark.Queries) (nexmark.Answers, time.Duration) {
	events := in.events()
	start := time.Now()
	a := nexmark.Reference(q, events)
	return a, time.Since(start)
}
