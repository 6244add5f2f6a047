package jetstream

import (
	"strconv"
	"testing"
	"time"
)

// TestSinkDropsRepublishedResults publishes results, publishes an
// overlapping range again as a restored job would, and checks the stream
// holds each result once and the sink counted the duplicates.
func TestSinkDropsRepublishedResults(t *testing.T) {
	_, js := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	out := Subjects{Prefix: "test.results"}
	s, err := EnsureStream(ctx, js, StreamOptions{Name: "RESULTS", Subjects: out, DuplicateWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	first := NewSink(js, SinkOptions{MaxPending: 7})
	for i := range 100 {
		if err := first.Publish(ctx, out.For(i%4), "r"+strconv.Itoa(i), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	again := NewSink(js, SinkOptions{})
	for i := 60; i < 150; i++ {
		if err := again.Publish(ctx, out.For(i%4), "r"+strconv.Itoa(i), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := again.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := first.Stats(); got.Published != 100 || got.Duplicates != 0 {
		t.Fatalf("first sink: %+v", got)
	}
	if got := again.Stats(); got.Published != 50 || got.Duplicates != 40 {
		t.Fatalf("second sink: %+v, want 50 published and 40 duplicates", got)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 150 {
		t.Fatalf("stream holds %d messages, want 150", info.State.Msgs)
	}
	if err := again.Publish(ctx, out.For(0), "", nil); err == nil {
		t.Fatal("a message without an id was accepted")
	}
}

func TestEnsureStreamChecksSubjects(t *testing.T) {
	_, js := startServer(t)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "S", Subjects: Subjects{Prefix: "a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "S", Subjects: Subjects{Prefix: "a"}}); err != nil {
		t.Fatalf("ensuring an existing stream: %v", err)
	}
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "S", Subjects: Subjects{Prefix: "b"}}); err == nil {
		t.Fatal("a stream with other subjects was accepted")
	}
	if _, err := EnsureStream(ctx, js, StreamOptions{Name: "T", Subjects: Subjects{Prefix: "c.*"}}); err == nil {
		t.Fatal("a wildcard prefix was accepted")
	}
}
