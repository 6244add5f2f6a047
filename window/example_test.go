package window_test

import (
	"fmt"
	"os"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/window"
)

// sum adds up int64 values: an AggregateFunction whose accumulator is the
// running sum.
type sum struct{}

func (sum) CreateAccumulator() int64 { return 0 }
func (sum) Add(v, acc int64) int64   { return acc + v }
func (sum) Result(acc int64) int64   { return acc }
func (sum) Merge(a, b int64) int64   { return a + b }

// Clicks per user in tumbling windows of 10 time units, with 5 units of
// allowed lateness.
func Example() {
	dir, err := os.MkdirTemp("", "window-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	b, err := backend.Open(backend.String, backend.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	clicks, err := window.New(b, sum{}, backend.Int64, window.Options[string, int64, int64]{
		Name:            "clicks",
		Assigner:        window.Tumbling(10, 0),
		AllowedLateness: 5,
		Emit: func(user string, w window.Window, n int64) error {
			fmt.Printf("%s %v: %d\n", user, w, n)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(clicks.Process("ann", 1, 3))
	must(clicks.Process("bob", 1, 7))
	must(clicks.Process("ann", 1, 12)) // in [10,20)
	must(clicks.Process("ann", 1, 8))  // out of order: still in [0,10)

	fmt.Println("watermark 9:")
	must(clicks.AdvanceWatermark(9)) // [0,10) fires, in key-group order

	fmt.Println("late click at 4:")
	must(clicks.Process("ann", 1, 4)) // within lateness: fires again at once

	must(clicks.AdvanceWatermark(15)) // [0,10) is past its lateness: cleared
	must(clicks.Process("bob", 1, 2)) // dropped
	fmt.Println("dropped:", clicks.Stats().LateDropped)

	fmt.Println("watermark 19:")
	must(clicks.AdvanceWatermark(19))
	// Output:
	// watermark 9:
	// bob [0,10): 1
	// ann [0,10): 2
	// late click at 4:
	// ann [0,10): 3
	// dropped: 1
	// watermark 19:
	// ann [10,20): 1
}
