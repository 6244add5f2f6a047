package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// demoConfig is what the demo subcommand runs.
type demoConfig struct {
	events         int       // Nexmark events to process
	parallelism    int       // subtasks per operator
	maxParallelism int       // key groups
	seed           uint64    // Nexmark stream
	dir            string    // root of the backends' directories; must hold no earlier run
	progress       io.Writer // where to draw a progress bar, or nil
}

// runDemo runs the demo job: process the events into 2 x parallelism
// backends, close them, reopen them and check every key against the
// in-memory tally. It returns an error wrapping errMismatch if any state
// differs.
func runDemo(cfg demoConfig, out io.Writer) error {
	fmt.Fprintf(out, "pebblestate demo: %d Nexmark events (seed %d), parallelism %d, max parallelism %d\n",
		cfg.events, cfg.seed, cfg.parallelism, cfg.maxParallelism)
	t, err := processEvents(cfg, out)
	if err != nil {
		return err
	}
	return verifyReopened(cfg, t, out)
}

// processEvents opens the job's backends, runs the events through it,
// closes the backends and returns the tally of what state should hold.
func processEvents(cfg demoConfig, out io.Writer) (_ *tally, err error) {
	j, err := openJob(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := j.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()
	fmt.Fprintf(out, "state in %s: operators %s and %s, subtasks on key groups %s\n",
		cfg.dir, opBidsByAuction, opAuctionsBySeller, keyGroupList(j))

	gen := nexmark.New(nexmark.Config{Seed: cfg.seed})
	t := newTally()
	start := time.Now()
	bar := newProgressBar(cfg.progress, "events", cfg.progress != nil)
	for i := range cfg.events {
		e := gen.Next()
		if err := j.process(&e, t); err != nil {
			return nil, err
		}
		if i%1024 == 0 {
			bar.update(int64(i), int64(cfg.events), fmt.Sprintf("%d/%d", i, cfg.events))
		}
	}
	bar.finish(int64(cfg.events), int64(cfg.events), fmt.Sprintf("%d/%d", cfg.events, cfg.events))
	elapsed := time.Since(start)
	fmt.Fprintf(out, "processed %d events in %v: %.0f events/s, %d state reads and writes (%.0f/s)\n",
		cfg.events, elapsed.Round(time.Millisecond), float64(cfg.events)/elapsed.Seconds(),
		j.stateOps, float64(j.stateOps)/elapsed.Seconds())
	fmt.Fprintf(out, "  %d people, %d auctions by %d sellers, %d bids on %d auctions\n",
		t.events[nexmark.KindPerson], t.events[nexmark.KindAuction], len(t.sellers),
		t.events[nexmark.KindBid], len(t.auctions))
	return t, nil
}

// verifyReopened reopens the backends processEvents closed, registers the
// states again and checks them against the tally.
func verifyReopened(cfg demoConfig, t *tally, out io.Writer) (err error) {
	start := time.Now()
	j, err := openJob(cfg)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer func() {
		if cerr := j.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()
	fmt.Fprintf(out, "closed all backends; reopened the %d and registered their states in %v\n",
		j.backends(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	v, err := j.verify(t)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "read back every key in %v\n", time.Since(start).Round(time.Millisecond))
	printTop(out, v)
	fmt.Fprintf(out, "verified %d keys across %d backends: state survived reopen\n", v.keys, j.backends())
	return nil
}

// keyGroupList formats the key groups of the subtasks, e.g. "[0, 64) [64, 128)".
func keyGroupList(j *job) string {
	var s []string
	for _, b := range j.byAuction.backends {
		s = append(s, b.KeyGroups().String())
	}
	return strings.Join(s, " ")
}

// printTop prints the busiest keys as read back from state.
func printTop(out io.Writer, v *verified) {
	fmt.Fprintln(out, "top auctions by bids (bid-count, bids-per-channel, recent-prices):")
	for _, a := range v.auctions[:min(3, len(v.auctions))] {
		fmt.Fprintf(out, "  auction %d: %d bids from %d channels, last prices %s\n",
			a.id, a.bids, a.channels, dollars(a.prices[max(0, len(a.prices)-3):]))
	}
	fmt.Fprintln(out, "top sellers by auctions (auctions-per-category):")
	for _, s := range v.sellers[:min(3, len(v.sellers))] {
		var cats []string
		for _, c := range slices.Sorted(maps.Keys(s.categories)) {
			cats = append(cats, fmt.Sprintf("%d:%d", c, s.categories[c]))
		}
		fmt.Fprintf(out, "  seller %d: %d auctions, by category %s\n", s.id, s.auctions, strings.Join(cats, " "))
	}
}

// dollars formats prices in cents as dollars.
func dollars(cents []int64) string {
	s := make([]string, len(cents))
	for i, c := range cents {
		s[i] = fmt.Sprintf("$%d.%02d", c/100, c%100)
	}
	return strings.Join(s, " ")
}
