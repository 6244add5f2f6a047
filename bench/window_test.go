package bench

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/window"
)

// Window benchmarks: one op is one element through a window operator on a
// fresh backend, firings included (amortized): 1,000 keys drawn by a hash
// of the element's number, ten elements per time unit in order, a
// watermark every 1,000 elements, 100 units of lateness, and a sum
// aggregate. Tumbling windows of 1,000 units hold about 10 elements per
// key; a key's elements are about 100 units apart, so session windows
// with a gap of 100 units merge about two elements in three. They need no fixture, so they are cheap under
// -benchtime=1x.

type benchSum struct{}

func (benchSum) CreateAccumulator() int64 { return 0 }
func (benchSum) Add(v, acc int64) int64   { return acc + v }
func (benchSum) Result(acc int64) int64   { return acc }
func (benchSum) Merge(a, b int64) int64   { return a + b }

func BenchmarkWindowTumbling(b *testing.B) { benchWindow(b, window.Tumbling(1000, 0)) }

func BenchmarkWindowSession(b *testing.B) { benchWindow(b, window.Session(100)) }

func benchWindow(b *testing.B, a window.Assigner) {
	be, err := backend.Open(backend.Int64, backend.Options{Dir: b.TempDir(), TTLSweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := be.Close(); err != nil {
			b.Error(err)
		}
	})
	fired := 0
	op, err := window.New(be, benchSum{}, backend.Int64, window.Options[int64, int64, int64]{
		Assigner: a, AllowedLateness: 100,
		Emit: func(int64, window.Window, int64) error { fired++; return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	const keys = 1000
	stop := start(b)
	i := 0
	for b.Loop() {
		ts := int64(i / 10)
		h := uint64(i) * 0x9E3779B97F4A7C15
		if err := op.Process(int64((h^h>>29)%keys), 1, ts); err != nil {
			b.Fatal(err)
		}
		if i++; i%1000 == 0 {
			if err := op.AdvanceWatermark(ts - 10); err != nil {
				b.Fatal(err)
			}
		}
	}
	stop()
	b.ReportMetric(float64(fired)/float64(b.N), "fired/op")
}
