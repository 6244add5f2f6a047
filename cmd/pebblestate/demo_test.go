package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

func testConfig(t *testing.T, events, parallelism int) demoConfig {
	return demoConfig{events: events, parallelism: parallelism, maxParallelism: 128, seed: 1, dir: t.TempDir()}
}

// Ensure that the demo job runs, reopens its backends and verifies every
// key, at several parallelisms.
func TestDemo(t *testing.T) {
	for _, p := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			events := 20_000
			if p != 2 {
				events = 5_000
			}
			var out bytes.Buffer
			if err := runDemo(testConfig(t, events, p), &out); err != nil {
				t.Fatalf("%v\noutput:\n%s", err, out.String())
			}
			want := fmt.Sprintf("across %d backends: state survived reopen\n", 2*p)
			if !strings.Contains(out.String(), want) {
				t.Fatalf("output lacks %q:\n%s", want, out.String())
			}
			t.Log("\n" + out.String())
		})
	}
}

// Ensure that verification notices each kind of damage to the state
// between the run and the reopen, so a passing demo means something.
func TestDemoDetectsMismatch(t *testing.T) {
	type tamperFunc func(t *testing.T, s auctionStates)
	for name, tamper := range map[string]tamperFunc{
		"value": func(t *testing.T, s auctionStates) {
			n, _, err := s.bids.Get()
			check(t, err)
			check(t, s.bids.Update(n+1))
		},
		"list": func(t *testing.T, s auctionStates) {
			check(t, s.prices.Add(1))
		},
		"map": func(t *testing.T, s auctionStates) {
			check(t, s.channels.Put("no-such-channel", 1))
		},
		"lost key": func(t *testing.T, s auctionStates) {
			check(t, s.bids.Clear())
			check(t, s.prices.Clear())
			check(t, s.channels.Clear())
		},
		"one state lost a key": func(t *testing.T, s auctionStates) {
			check(t, s.prices.Clear())
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, 3_000, 2)
			var out bytes.Buffer
			tl, err := processEvents(cfg, &out)
			check(t, err)

			// Damage the first key of subtask 1 of bids-by-auction.
			kgs, err := backend.KeyGroupRangeForSubtask(cfg.maxParallelism, cfg.parallelism, 1)
			check(t, err)
			b, err := backend.Open(backend.Int64, backend.Options{
				Dir: filepath.Join(cfg.dir, opBidsByAuction, "subtask-1"), MaxParallelism: cfg.maxParallelism, KeyGroups: kgs})
			check(t, err)
			s, err := registerAuctionStates(b)
			check(t, err)
			var key int64
			for k, err := range s.bids.KeysInNamespace(backend.VoidNamespace{}) {
				check(t, err)
				key = k
				break
			}
			check(t, b.SetCurrentKey(key))
			tamper(t, s)
			check(t, b.Close())

			err = verifyReopened(cfg, tl, &out)
			if !errors.Is(err, errMismatch) {
				t.Fatalf("verify after damaging auction %d returned %v, want a mismatch", key, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(key)) {
				t.Errorf("error %q does not name auction %d", err, key)
			}
			t.Log(err)
		})
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
