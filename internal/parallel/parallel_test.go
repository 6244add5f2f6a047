package parallel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestDoRunsEveryJobWithinTheWorkerLimit(t *testing.T) {
	var running, peak, done atomic.Int32
	err := Do(context.Background(), 50, 3, func(ctx context.Context, i int) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		done.Add(1)
		running.Add(-1)
		return nil
	})
	if err != nil || done.Load() != 50 || peak.Load() > 3 {
		t.Fatalf("err %v, %d jobs done, peak %d workers", err, done.Load(), peak.Load())
	}
}

func TestDoReturnsTheFailureNotTheCancellations(t *testing.T) {
	boom := errors.New("boom")
	err := Do(context.Background(), 20, 4, func(ctx context.Context, i int) error {
		if i == 2 { // among the first jobs the 4 workers take
			return boom
		}
		<-ctx.Done() // the others wait until the failure cancels them
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want boom", err)
	}
}

func TestDoReturnsTheParentsError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Do(ctx, 5, 2, func(ctx context.Context, i int) error { return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	if err := Do(context.Background(), 0, 4, nil); err != nil {
		t.Fatalf("Do of no jobs = %v", err)
	}
}
