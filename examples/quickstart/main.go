// Command quickstart is the README's tour of pebblestate's API: it keeps
// per-user state in a backend, scopes some of it to windows, reopens the
// backend, reads everything back and checkpoints both subtasks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// states are the typed handles the operator uses.
type states struct {
	clicks *backend.Value[string, backend.VoidNamespace, int64]      // clicks per user
	pages  *backend.List[string, backend.VoidNamespace, string]      // pages per user, in order
	byHour *backend.Map[string, backend.VoidNamespace, int64, int64] // clicks per user per hour of day
	window *backend.Value[string, int64, int64]                      // clicks per user per 10 s window
	last   *backend.Value[string, backend.VoidNamespace, string]     // last page, forgotten after an hour
}

// register registers the states; after a reopen it finds the stored ones.
func register(b *backend.Backend[string]) (states, error) {
	var s states
	var errs [5]error
	s.clicks, errs[0] = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "clicks", Codec: backend.Int64})
	s.pages, errs[1] = backend.GetList(b, backend.ListDescriptor[string]{Name: "pages", Codec: backend.String})
	s.byHour, errs[2] = backend.GetMap(b, backend.MapDescriptor[int64, int64]{
		Name: "by-hour", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	// A namespaced state: the namespace is the window, here its start in ms.
	s.window, errs[3] = backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{
		Name: "per-window", Codec: backend.Int64})
	// A state with time-to-live: entries expire an hour after their last write.
	s.last, errs[4] = backend.GetValue(b, backend.ValueDescriptor[string]{
		Name: "last-page", Codec: backend.String, TTL: ttl.Config{TTL: time.Hour}})
	return s, errors.Join(errs[:]...)
}

type click struct {
	user, page string
	ts         int64 // event time, ms
}

// onClick is the operator's per-record code: the framework has set the
// current key, so every state reads and writes the user's entries.
func onClick(s states, c click) error {
	n, _, err := s.clicks.Get()
	if err != nil {
		return err
	}
	if err := s.clicks.Update(n + 1); err != nil {
		return err
	}
	if err := s.pages.Add(c.page); err != nil {
		return err
	}
	if err := s.last.Update(c.page); err != nil {
		return err
	}
	hour := c.ts / 3_600_000 % 24
	h, _, err := s.byHour.Get(hour)
	if err != nil {
		return err
	}
	if err := s.byHour.Put(hour, h+1); err != nil {
		return err
	}
	if err := s.window.SetCurrentNamespace(c.ts - c.ts%10_000); err != nil {
		return err
	}
	w, _, err := s.window.Get()
	if err != nil {
		return err
	}
	return s.window.Update(w + 1)
}

// subtask is one parallel instance of the operator: its backend, on the
// key groups it owns, and its states.
type subtask struct {
	b *backend.Backend[string]
	s states
}

const maxParallelism, parallelism = 128, 2

// openSubtask opens (or reopens) subtask i's backend and registers the
// states. TTL reads processing time from clock.
func openSubtask(root string, i int, clock ttl.Clock) (subtask, error) {
	kgs, err := backend.KeyGroupRangeForSubtask(maxParallelism, parallelism, i)
	if err != nil {
		return subtask{}, err
	}
	b, err := backend.Open(backend.String, backend.Options{
		Dir: filepath.Join(root, fmt.Sprint(i)), MaxParallelism: maxParallelism, KeyGroups: kgs, Clock: clock})
	if err != nil {
		return subtask{}, err
	}
	s, err := register(b)
	if err != nil {
		return subtask{}, errors.Join(err, b.Close())
	}
	return subtask{b, s}, nil
}

func run(out io.Writer) error {
	root, err := os.MkdirTemp("", "quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	// A framework runs the operator as parallel subtasks, each with one
	// backend on the key groups it owns. A manual clock drives TTL here;
	// the default is the system clock.
	clock := ttl.NewManualClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	subtasks := make([]subtask, parallelism)
	defer func() {
		for _, t := range subtasks {
			if t.b != nil {
				t.b.Close() // closing twice is a no-op
			}
		}
	}()
	for i := range subtasks {
		if subtasks[i], err = openSubtask(root, i, clock); err != nil {
			return err
		}
	}

	clicks := []click{
		{"alice", "/home", 1_000}, {"bob", "/home", 2_000}, {"alice", "/cart", 12_000},
		{"frank", "/home", 13_000}, {"alice", "/pay", 3_601_000}, {"judy", "/help", 3_602_000},
	}
	for _, c := range clicks {
		// Route the record to the subtask owning its key's key group, and
		// make the user its current key.
		kg, err := backend.KeyGroupOf(backend.String, c.user, maxParallelism)
		if err != nil {
			return err
		}
		i, err := backend.SubtaskForKeyGroup(maxParallelism, parallelism, kg)
		if err != nil {
			return err
		}
		if err := subtasks[i].b.SetCurrentKey(c.user); err != nil {
			return err
		}
		if err := onClick(subtasks[i].s, c); err != nil {
			return err
		}
	}

	// Close flushes: with the write-ahead log off (the default), that is
	// what makes the writes durable. Reopening brings every state back.
	for i, t := range subtasks {
		if err := t.b.Close(); err != nil {
			return err
		}
		if subtasks[i], err = openSubtask(root, i, clock); err != nil {
			return err
		}
	}
	for i, t := range subtasks {
		// Every key with an entry in the state, in this subtask's key groups.
		for user, err := range t.s.clicks.KeysInNamespace(backend.VoidNamespace{}) {
			if err != nil {
				return err
			}
			if err := t.b.SetCurrentKey(user); err != nil {
				return err
			}
			n, _, err := t.s.clicks.Get()
			if err != nil {
				return err
			}
			pages, err := t.s.pages.Get()
			if err != nil {
				return err
			}
			last, _, err := t.s.last.Get()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "subtask %d: %s: %d clicks on %v, last %s, by hour:", i, user, n, pages, last)
			for e, err := range t.s.byHour.Entries() {
				if err != nil {
					return err
				}
				fmt.Fprintf(out, " %d:%d", e.Key, e.Value)
			}
			fmt.Fprintln(out)
		}
		// Window state: the keys with an entry in window [10 s, 20 s).
		for user, err := range t.s.window.KeysInNamespace(10_000) {
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "subtask %d: %s clicked in window [10s, 20s)\n", i, user)
		}
	}

	// A checkpoint of the job: one coordinator, configured once with the
	// checkpoint storage and the operator's subtasks, takes it whole.
	ctx := context.Background()
	st, err := snapshot.NewLocal(filepath.Join(root, "checkpoints"))
	if err != nil {
		return err
	}
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{
		{Name: "default", Subtasks: []checkpoint.Participant{
			checkpoint.KeyedParticipant(subtasks[0].b), checkpoint.KeyedParticipant(subtasks[1].b)}},
	}})
	if err != nil {
		return err
	}
	defer c.Close()
	stats, err := c.Checkpoint(ctx) // snapshots, commit, notify, retention; an abort leaves nothing
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "checkpoint %d: %d subtasks\n", stats.ID, len(stats.Subtasks))

	// Two hours later every last-page entry has expired: reads no longer
	// see them, and background cleanup removes them from disk.
	clock.Advance(2 * time.Hour)
	for _, t := range subtasks {
		for user, err := range t.s.clicks.KeysInNamespace(backend.VoidNamespace{}) {
			if err != nil {
				return err
			}
			if err := t.b.SetCurrentKey(user); err != nil {
				return err
			}
			if _, ok, err := t.s.last.Get(); err != nil || ok {
				return fmt.Errorf("last page of %s did not expire (error %v)", user, err)
			}
		}
	}
	fmt.Fprintln(out, "two hours later: every last-page entry has expired")
	return nil
}
