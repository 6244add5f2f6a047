// Package harness tests users' keyed functions on real backends, as
// Flink's keyed one-input operator test harnesses do: feed elements with
// keys and timestamps, advance the watermark and the processing time,
// collect what the function emits and which timers fired, take a
// checkpoint, restore it into one harness or several at another
// parallelism, and read state, all on real Pebble databases in
// t.TempDir().
//
// # Basics
//
// The function under test implements Function: ProcessElement for each
// element, OnTimer for each timer that fires, both with a Context giving
// the current key, the timestamp, the watermark, the processing time, the
// backend (for state), timers and Collect. A function that keeps state
// handles in fields registers them in Open (Opener). A counter that reports
// each key's count 100 ms of event time after its first element:
//
//	type counter struct {
//		count *backend.Value[string, backend.VoidNamespace, int64]
//	}
//
//	func (c *counter) Open(b *backend.Backend[string]) (err error) {
//		c.count, err = backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "count", Codec: backend.Int64})
//		return err
//	}
//
//	func (c *counter) ProcessElement(ctx *harness.Context[string, string], _ string) error {
//		n, _, err := c.count.Get()
//		if err != nil {
//			return err
//		}
//		if n == 0 {
//			if err := ctx.RegisterEventTimeTimer(ctx.Timestamp() + 100); err != nil {
//				return err
//			}
//		}
//		return c.count.Update(n + 1)
//	}
//
//	func (c *counter) OnTimer(ctx *harness.Context[string, string], ts int64, _ harness.TimeDomain) error {
//		n, _, err := c.count.Get()
//		if err != nil {
//			return err
//		}
//		ctx.Collect(ctx.Key() + ":" + strconv.FormatInt(n, 10))
//		return nil
//	}
//
// A test runs it at parallelism 2, checkpoints, and restores at 3:
//
//	newCounter := func() harness.Function[string, string, string] { return &counter{} }
//	g := harness.NewGroup(t, backend.String, newCounter, 2, harness.Options{})
//	g.ProcessElement("alice", "click", 1000)
//	g.ProcessElement("bob", "click", 1010)
//	g.ProcessElement("alice", "click", 1020)
//	snap := g.Checkpoint()
//
//	r := harness.RestoreGroup(t, backend.String, newCounter, snap, 3, harness.Options{})
//	r.ProcessElement("bob", "click", 1050)
//	r.ProcessWatermark(1200)
//	got := r.OutputValues() // "alice:2" and "bob:2", in some order
//
// New and Restore make a single Harness (on all key groups, or those of
// Options.Backend.KeyGroups); NewGroup and RestoreGroup make one harness
// per subtask and route each element to the one owning its key's key
// group, under the backends' key-group assigner (for a restore, the one the
// checkpoint recorded). To read state, register it on Harness.Backend (or
// Group.HarnessFor(key).Backend()), call the harness's SetCurrentKey and
// read.
//
// # Time
//
// The watermark moves only by ProcessWatermark, and starts at
// math.MinInt64, as in Flink. Processing time is a ttl.ManualClock,
// which is also the backend's TTL clock: it starts at
// Options.ProcessingTime and moves only by SetProcessingTime, which fires
// the processing-time timers due. Neither is in a checkpoint: a restored
// harness starts at Options.ProcessingTime again (pass the time of the
// checkpoint to continue) and at the minimal watermark.
//
// Code that registers timer services of its own on the backend
// (backend.GetTimerService), as operator code does, rather than using
// Context's timers, tells the harness how to fire them: the function
// implements TimerOwner, returning each service bound to its handler with
// OnTimers. Each advance of the watermark or the processing time then
// fires Context's due timers, then each bound service's through its
// handler, again until none is due; FiredTimers records them with their
// service and namespace:
//
//	func (r *reminder) Open(b *backend.Backend[string]) (err error) {
//		r.alarms, err = backend.GetTimerService(b, backend.TimerServiceDescriptor[string]{Name: "alarms", NamespaceCodec: backend.String})
//		return err
//	}
//
//	func (r *reminder) TimerServices() []harness.Timers[string, string] {
//		return []harness.Timers[string, string]{harness.OnTimers(r.alarms, r.onAlarm)}
//	}
//
//	func (r *reminder) onAlarm(ctx *harness.Context[string, string], what string, _ int64, _ harness.TimeDomain) error {
//		ctx.Collect(ctx.Key() + ": " + what)
//		return nil
//	}
//
// # Checkpoints
//
// Checkpoint takes a checkpoint of every backend of the harness or group
// through a checkpoint.Coordinator into Options.CheckpointDir (a temporary
// directory by default), keeping every checkpoint, and returns it as a
// Snapshot. The function's timers are in it (in a timer service named
// TimerServiceName); the output collected so far, the watermark and the
// processing time are not.
//
// # Caveats
//
// Every method fails the test on an error (ProcessElementErr returns it
// instead), so a harness is used from the test's goroutine. Timers the
// function registers on timer services of its own that it does not bind
// (TimerOwner) are stored and checkpointed but never fired by the
// harness. The order of a group's output depends on its parallelism (the subtasks
// fire their timers in turn); compare outputs across parallelisms by key,
// or sorted.
package harness
