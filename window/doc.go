// Package window runs event-time windows over a keyed backend: tumbling,
// sliding and session windows with allowed lateness, as Flink's
// WindowOperator does with its EventTimeTrigger. A stream framework (or a
// user) drives one Operator per keyed subtask, beside the subtask's
// backend.Backend: Process for each element, AdvanceWatermark for each
// watermark; results come out through the Emit callback. Only event time
// is supported: windows fire on watermarks, never on processing time.
//
// # A worked example
//
// Clicks per user in tumbling windows of 10 time units, with 5 units of
// allowed lateness (the package's Example runs it):
//
//	b, _ := backend.Open(backend.String, backend.Options{Dir: dir})
//	clicks, _ := window.New(b, sum{}, backend.Int64, window.Options[string, int64, int64]{
//		Name:            "clicks",
//		Assigner:        window.Tumbling(10, 0),
//		AllowedLateness: 5,
//		Emit: func(user string, w window.Window, n int64) error {
//			fmt.Printf("%s %v: %d\n", user, w, n)
//			return nil
//		},
//	})
//	clicks.Process("ann", 1, 3)
//	clicks.Process("bob", 1, 7)
//	clicks.Process("ann", 1, 12)     // in [10,20)
//	clicks.Process("ann", 1, 8)      // out of order: still in [0,10)
//	clicks.AdvanceWatermark(9)       // prints "bob [0,10): 1" and "ann [0,10): 2"
//	clicks.Process("ann", 1, 4)      // late, within lateness: prints "ann [0,10): 3"
//	clicks.AdvanceWatermark(15)      // [0,10) is past its lateness: cleared
//	clicks.Process("bob", 1, 2)      // dropped: Stats().LateDropped is 1
//	clicks.AdvanceWatermark(19)      // prints "ann [10,20): 1"
//
// where sum is a backend.AggregateFunction[int64, int64, int64] adding its
// inputs. New aggregates each window incrementally (one accumulator per
// key and window); NewList keeps every element and emits the list.
//
// # Semantics
//
// An element with timestamp ts goes into the windows the Assigner gives
// it: one [start, start+size) for Tumbling, about size/slide for Sliding,
// and [ts, ts+gap) for Session, which then merges with the key's session
// windows it overlaps or touches. A window fires when the watermark
// reaches its MaxTimestamp (End-1), emitting its result if it holds
// anything. Its state is kept until the watermark reaches MaxTimestamp +
// AllowedLateness; an element arriving for a window the watermark has
// passed but whose state is kept is added and the window fires again at
// once with the updated result. An element all of whose windows are past
// that is dropped: Stats.LateDropped counts it and Options.Late receives
// it. Results of one key and window come out in order; in one
// AdvanceWatermark windows fire in timestamp order, ties by key group,
// key and window (the timer service's order).
//
// # State in the backend
//
// The operator's states are named after Options.Name (default "window"):
//   - "<name>/contents": the windows' contents, an aggregating (New) or
//     list (NewList) state in the window namespace, Codec: 16 bytes of
//     [start, end).
//   - "<name>/timers": a timer service with the same namespace. A window
//     has an event-time timer at its MaxTimestamp, which fires it, and
//     one at MaxTimestamp + AllowedLateness, which clears it; with no
//     lateness they are one timer. A window late on arrival gets no
//     firing timer (it fires at once), only the cleanup timer. Each
//     registration is a write, so the operator writes a window's timers
//     with its first element only: it remembers, in memory, the timers it
//     registered until the watermark reaches them (up to 65,536 of them;
//     beyond, a window's timers are written with every element), and a
//     merge forgets those of the windows it absorbs. A new operator, after
//     a reopen or a restore, remembers none, so the first element of a
//     window writes its timers again (the same keys; a firing timer that
//     fired before a restore at a lower watermark is so registered again).
//     Keys are remembered when their type's == agrees with any encoding
//     (integers, strings, []byte, arrays and structs of them); for other
//     key types (floats, pointers, interfaces) every element writes them.
//   - "<name>/sessions", session windows only: per key, the session
//     windows in flight, each mapped to the window whose namespace holds
//     its contents (Flink's MergingWindowSet). When windows merge, the
//     merged window keeps one absorbed window's namespace and the others'
//     contents move into it with MergeNamespaces, in one write; the
//     absorbed windows' timers are deleted and the merged window's
//     registered. So a merge moves the contents of all but one of the
//     windows it absorbs, and timers always belong to windows in flight.
//
// The bytes of the window namespace and of the session set are specified
// in FORMAT.md beside this package.
//
// # Checkpoints and rescaling
//
// Everything the operator keeps between calls is keyed state and timers
// in the backend, so a checkpoint of the backend (backend.Snapshot, or a
// checkpoint.Coordinator) holds every window in flight, and a restore
// (backend.Restore, RestoreLatest) at any parallelism gives each new
// subtask the windows and timers of its key groups. After a restore,
// create the operator again with the same name and options.
//
// What is not in the checkpoint: the watermark, and Stats. The timer
// service does not store the watermark either (as in Flink; its
// CurrentWatermark is math.MinInt64 after a restore), so a restored
// operator starts at math.MinInt64, where no element is late
// and nothing fires until the first watermark. A framework that wants
// lateness judged across the restore checkpoints the watermark with its
// operator state (when rescaling, the minimum of the old subtasks'
// watermarks is the safe choice: a lower watermark only takes more
// elements as not late, as after a restore in Flink) and
// calls AdvanceWatermark with it before the first element: nothing fires
// then, since every timer at or below a watermark fired before the
// checkpoint was taken. Elements after the checkpoint are replayed by
// the source as usual; their results are emitted again.
//
// Like the backend, an Operator is used from the subtask's one goroutine,
// and checkpoints are taken between calls, never from inside Emit.
package window
