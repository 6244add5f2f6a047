package backend_test

// The key-group assigner: Kafka's default partitioner against vectors an
// independent Kafka client computed, a Kafka-like job whose every
// partition's keys land in its key group, and the refusals of a reopen or
// restore with another assigner than the recorded one.

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// kafka sets the Kafka assigner with partitions key groups, owning r.
func kafka(partitions int, r backend.KeyGroupRange) tweak {
	return func(o *backend.Options) {
		o.KeyGroupAssigner, o.MaxParallelism, o.KeyGroups = backend.KafkaMurmur2, partitions, r
	}
}

// kafkaVector is one line of testdata/kafka_partition_vectors.txt.
type kafkaVector struct {
	key        []byte
	partitions int
	partition  int
}

func readKafkaVectors(t testing.TB) []kafkaVector {
	t.Helper()
	f, err := os.Open("../testdata/kafka_partition_vectors.txt")
	noErr(t, err)
	defer f.Close()
	var vs []kafkaVector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fs := strings.Fields(text)
		v := kafkaVector{key: []byte{}}
		if fs[0] != "-" {
			v.key, err = hex.DecodeString(fs[0])
			noErr(t, err)
		}
		v.partitions, err = strconv.Atoi(fs[1])
		noErr(t, err)
		v.partition, err = strconv.Atoi(fs[2])
		noErr(t, err)
		vs = append(vs, v)
	}
	noErr(t, sc.Err())
	return vs
}

// TestKafkaMurmur2_BackendsAcceptTheirPartitions opens, for topics of 12
// and 64 partitions, backends as a job consuming them would (3 subtasks,
// each owning the key groups of its partitions; and for 12 partitions one
// backend per partition), and checks every golden vector: the key's key
// group is its Kafka partition (as an independent Kafka client computed
// it), the owner accepts it, every other backend rejects it.
func TestKafkaMurmur2_BackendsAcceptTheirPartitions(t *testing.T) {
	vectors := readKafkaVectors(t)
	for _, c := range []struct{ partitions, parallelism int }{{12, 3}, {12, 12}, {64, 3}} {
		t.Run(fmt.Sprintf("%d-partitions-p%d", c.partitions, c.parallelism), func(t *testing.T) {
			bs := make([]*backend.Backend[[]byte], c.parallelism)
			for i := range bs {
				r := must(backend.KeyGroupRangeForSubtask(c.partitions, c.parallelism, i)).in(t)
				bs[i] = MustOpenK(t, backend.Bytes, kafka(c.partitions, r))
			}
			n := 0
			for _, v := range vectors {
				if v.partitions != c.partitions {
					continue
				}
				n++
				owner := must(backend.SubtaskForKeyGroup(c.partitions, c.parallelism, v.partition)).in(t)
				for i, b := range bs {
					if kg := must(b.KeyGroupOf(v.key)).in(t); kg != v.partition {
						t.Fatalf("KeyGroupOf(%x) = %d, Kafka partition %d", v.key, kg, v.partition)
					}
					err := b.SetCurrentKey(v.key)
					if i != owner {
						wantErr(t, err, backend.ErrKeyGroupOutOfRange)
						continue
					}
					noErr(t, err)
					if kg := b.CurrentKeyGroup(); kg != v.partition {
						t.Fatalf("key %x: current key group %d, Kafka partition %d", v.key, kg, v.partition)
					}
				}
				if kg := must(backend.KeyGroupOfWith(backend.KafkaMurmur2, backend.Bytes, v.key, c.partitions)).in(t); kg != v.partition {
					t.Fatalf("KeyGroupOfWith(%x) = %d, Kafka partition %d", v.key, kg, v.partition)
				}
			}
			if n < 10 {
				t.Fatalf("only %d vectors for %d partitions", n, c.partitions)
			}
		})
	}
}

// TestKafkaMurmur2_PartitionKeysStayInTheirKeyGroup runs a Kafka-like job:
// string keys, 12 partitions, consumed by 4 subtasks whose backends own
// their partitions' key groups. Each key is routed by its Kafka partition
// (every key is accepted where it is routed), counted, checkpointed, and
// restored at parallelism 12, one backend per partition (and back at 5):
// each backend holds exactly the keys of its partitions.
func TestKafkaMurmur2_PartitionKeysStayInTheirKeyGroup(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		const partitions, keys = 12, 600
		ctx := context.Background()
		st := must(snapshot.NewLocal(t.TempDir())).in(t)
		desc := backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64}
		byPartition := map[int][]string{}
		open := func(p int) []*backend.Backend[string] {
			bs := make([]*backend.Backend[string], p)
			for i := range bs {
				bs[i] = MustOpenK(t, backend.String, kafka(partitions, must(backend.KeyGroupRangeForSubtask(partitions, p, i)).in(t)), m.set)
			}
			return bs
		}
		bs := open(4)
		for i := range keys {
			k := fmt.Sprint("order-", i)
			part := must(backend.KafkaMurmur2.Assign([]byte(k), partitions)).in(t)
			byPartition[part] = append(byPartition[part], k)
			b := bs[must(backend.SubtaskForKeyGroup(partitions, 4, part)).in(t)]
			noErr(t, b.SetCurrentKey(k))
			v := must(backend.GetValue(b, desc)).in(t)
			noErr(t, v.Update(int64(i)))
		}
		if len(byPartition) != partitions {
			t.Fatalf("%d keys fell into %d of %d partitions", keys, len(byPartition), partitions)
		}
		hs := make([]snapshot.Handle, len(bs))
		for i, b := range bs {
			s := must(b.Snapshot(1, st)).in(t)
			hs[i] = must(s.Run(ctx)).in(t)
			if hs[i].KeyGroupAssigner != "kafka-murmur2" || hs[i].Assigner() != "kafka-murmur2" {
				t.Fatalf("handle records assigner %q", hs[i].KeyGroupAssigner)
			}
		}
		noErr(t, retention.Complete(ctx, st, &snapshot.Checkpoint{ID: 1, Handles: hs}, 1))

		check := func(p int) {
			bs := restoreAt(t, st, hs, p, func(i int) tweak {
				return kafka(partitions, must(backend.KeyGroupRangeForSubtask(partitions, p, i)).in(t))
			})
			for i, b := range bs {
				v := must(backend.GetValue(b, desc)).in(t)
				var want []string
				for part := b.KeyGroups().Start; part < b.KeyGroups().End; part++ {
					want = append(want, byPartition[part]...)
				}
				got := collect(t, v.KeysInNamespace(backend.VoidNamespace{}))
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("p=%d subtask %d (%s): %d keys, want the %d of its partitions", p, i, b.KeyGroups(), len(got), len(want))
				}
				for _, k := range want {
					noErr(t, b.SetCurrentKey(k))
					if _, ok, err := v.Get(); err != nil || !ok {
						t.Fatalf("p=%d key %s: %v %v", p, k, ok, err)
					}
				}
			}
		}
		check(partitions)
		check(5)
	})
}

// restoreAt restores subtasks 0 to p-1 from hs, subtask i with the
// options opts(i) sets.
func restoreAt(t testing.TB, st snapshot.Storage, hs []snapshot.Handle, p int, opts func(i int) tweak) []*backend.Backend[string] {
	t.Helper()
	bs := make([]*backend.Backend[string], p)
	for i := range bs {
		bs[i] = MustRestore(t, backend.String, st, hs, opts(i))
	}
	return bs
}

// TestKeyGroupAssigner_ReopenWithAnother checks that the assigner is
// recorded with the directory: reopening with the other one is refused,
// naming both, and the state is untouched.
func TestKeyGroupAssigner_ReopenWithAnother(t *testing.T) {
	for _, c := range []struct{ made, reopened backend.KeyGroupAssigner }{
		{backend.KafkaMurmur2, backend.Murmur3},
		{backend.Murmur3, backend.KafkaMurmur2},
	} {
		t.Run(c.made.String(), func(t *testing.T) {
			dir := t.TempDir()
			with := func(a backend.KeyGroupAssigner) tweak {
				return func(o *backend.Options) { o.Dir, o.KeyGroupAssigner = dir, a }
			}
			b := MustOpen(t, with(c.made))
			setString(t, b, "k", "v")
			noErr(t, b.Close())
			// The record names a non-default assigner, in a version 2
			// record that builds from before the field refuse.
			db := rawDB(t, dir)
			raw, closer, err := db.Get([]byte{0, 0, 'B'})
			noErr(t, err)
			rec := string(raw)
			noErr(t, closer.Close())
			noErr(t, db.Close())
			wantRec := `"format_version":1,`
			if c.made == backend.KafkaMurmur2 {
				wantRec = `"format_version":2,`
			}
			if !strings.Contains(rec, wantRec) || strings.Contains(rec, "kafka-murmur2") != (c.made == backend.KafkaMurmur2) {
				t.Fatalf("backend record %s", rec)
			}
			_, err = backend.Open(backend.String, options(t, []tweak{with(c.reopened)}))
			wantErr(t, err, backend.ErrIncompatibleBackend)
			msg := err.Error()
			if !strings.Contains(msg, "key-group assigner "+c.made.String()+", not "+c.reopened.String()) || !strings.Contains(msg, dir) {
				t.Fatalf("error %q does not name both assigners and the directory", msg)
			}
			b = MustOpen(t, with(c.made))
			if b.KeyGroupAssigner() != c.made {
				t.Fatalf("KeyGroupAssigner() = %v", b.KeyGroupAssigner())
			}
			wantString(t, b, "k", "v")
		})
	}
}

// TestKeyGroupAssigner_RestoreWithAnother checks that a checkpoint records
// its assigner: restoring it with the other one is refused before
// anything is written, naming both; with the same one it restores at
// another parallelism.
func TestKeyGroupAssigner_RestoreWithAnother(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		for _, made := range []backend.KeyGroupAssigner{backend.Murmur3, backend.KafkaMurmur2} {
			other := backend.KafkaMurmur2
			if made == backend.KafkaMurmur2 {
				other = backend.Murmur3
			}
			t.Run(made.String(), func(t *testing.T) {
				st := must(snapshot.NewLocal(t.TempDir())).in(t)
				assign := func(a backend.KeyGroupAssigner, r backend.KeyGroupRange) tweak {
					return func(o *backend.Options) { o.KeyGroupAssigner, o.MaxParallelism, o.KeyGroups = a, 16, r }
				}
				b := MustOpen(t, assign(made, backend.KeyGroupRange{Start: 0, End: 16}), m.set)
				for i := range 50 {
					setString(t, b, fmt.Sprint("k", i), fmt.Sprint("v", i))
				}
				cp := must(b.Checkpoint(ctx, st, 1)).in(t)
				if got := cp.Handles[0].Assigner(); got != made.String() {
					t.Fatalf("handle's assigner %q, want %q", got, made)
				}
				dir := t.TempDir()
				_, err := backend.Restore(ctx, backend.String, options(t, []tweak{inDir(dir), assign(other, backend.KeyGroupRange{Start: 0, End: 16})}), st, cp.Handles)
				wantErr(t, err, backend.ErrIncompatibleBackend)
				if msg := err.Error(); !strings.Contains(msg, "key-group assigner "+made.String()+", not "+other.String()) {
					t.Fatalf("error %q does not name both assigners", msg)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("the refused restore left %d entries in %s", len(ents), dir)
				}
				// Rescaled, and at the handle's own range (which keeps an
				// incremental handle's database and its record).
				for i, r := range []backend.KeyGroupRange{{Start: 0, End: 5}, {Start: 5, End: 16}, {Start: 0, End: 16}} {
					rb := MustRestore(t, backend.String, st, cp.Handles, assign(made, r))
					n := 0
					for j := range 50 {
						k := fmt.Sprint("k", j)
						kg := must(rb.KeyGroupOf(k)).in(t)
						if !r.Contains(kg) {
							continue
						}
						n++
						wantString(t, rb, k, fmt.Sprint("v", j))
					}
					if n == 0 {
						t.Fatalf("restored subtask %d (%s) owns none of the keys", i, r)
					}
				}
			})
		}
	})
}

// TestKeyGroupAssigner_OldCheckpointMeansMurmur3 checks that metadata
// written before the assigner was recorded (the golden checkpoint) means
// murmur3: it restores with the default and is refused with KafkaMurmur2.
func TestKeyGroupAssigner_OldCheckpointMeansMurmur3(t *testing.T) {
	ctx := context.Background()
	st := must(snapshot.NewLocal(goldenCopy(t))).in(t)
	cp := must(snapshot.Latest(ctx, st)).in(t)
	for _, h := range cp.Handles {
		if h.KeyGroupAssigner != "" || h.Assigner() != "murmur3" {
			t.Fatalf("golden handle has assigner %q (%q)", h.KeyGroupAssigner, h.Assigner())
		}
	}
	o := backend.Options{Dir: t.TempDir(), Operator: goldenOp, MaxParallelism: goldenMaxPar, KeyGroupAssigner: backend.KafkaMurmur2}
	_, err := backend.Restore(ctx, backend.Int64, o, st, cp.Handles)
	wantErr(t, err, backend.ErrIncompatibleBackend)
	o.KeyGroupAssigner = backend.Murmur3
	b, err := backend.Restore(ctx, backend.Int64, o, st, cp.Handles)
	noErr(t, err)
	noErr(t, b.Close())
}

// TestKeyGroupAssigner_HandlesMustAgree checks that the handles of one
// operator that disagree on the assigner are inconsistent.
func TestKeyGroupAssigner_HandlesMustAgree(t *testing.T) {
	ctx := context.Background()
	st := must(snapshot.NewLocal(t.TempDir())).in(t)
	var hs []snapshot.Handle
	for i, a := range []backend.KeyGroupAssigner{backend.Murmur3, backend.KafkaMurmur2} {
		r := must(backend.KeyGroupRangeForSubtask(8, 2, i)).in(t)
		b := MustOpen(t, func(o *backend.Options) { o.KeyGroupAssigner, o.MaxParallelism, o.KeyGroups = a, 8, r })
		hs = append(hs, must(must(b.Snapshot(1, st)).in(t).Run(ctx)).in(t))
	}
	err := snapshot.Commit(ctx, st, &snapshot.Checkpoint{ID: 1, Handles: hs})
	wantErr(t, err, snapshot.ErrInconsistent)
	if !strings.Contains(err.Error(), "disagree on key-group assigner: murmur3") {
		t.Fatalf("error %q does not name the disagreement", err)
	}
}

// TestKeyGroupAssigner_InvalidOption checks that an assigner outside the
// closed set is refused by Validate, and that names parse.
func TestKeyGroupAssigner_InvalidOption(t *testing.T) {
	_, err := backend.Open(backend.String, backend.Options{Dir: t.TempDir(), KeyGroupAssigner: backend.KeyGroupAssigner(9)})
	wantErr(t, err, backend.ErrInvalidOptions)
	for name, want := range map[string]backend.KeyGroupAssigner{"": backend.Murmur3, "murmur3": backend.Murmur3, "kafka-murmur2": backend.KafkaMurmur2} {
		if a, err := backend.ParseKeyGroupAssigner(name); err != nil || a != want {
			t.Errorf("ParseKeyGroupAssigner(%q) = %v, %v", name, a, err)
		}
	}
	if _, err := backend.ParseKeyGroupAssigner("kafka"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("ParseKeyGroupAssigner(kafka) = %v", err)
	}
}

// setString sets key k's "s" string value to v.
func setString(t testing.TB, b *backend.Backend[string], k, v string) {
	t.Helper()
	s := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "s", Codec: backend.String})).in(t)
	setKey(t, b, k)
	noErr(t, s.Update(v))
}

// wantString checks key k's "s" string value.
func wantString(t testing.TB, b *backend.Backend[string], k, want string) {
	t.Helper()
	s := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "s", Codec: backend.String})).in(t)
	setKey(t, b, k)
	wantValue(t, s, want)
}
