package jetstream

import (
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

func TestSubjects(t *testing.T) {
	s := Subjects{Prefix: "nexmark.events"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.For(17); got != "nexmark.events.17" {
		t.Fatalf("For(17) = %q", got)
	}
	if got := s.All(); got != "nexmark.events.*" {
		t.Fatalf("All() = %q", got)
	}
	if got, want := s.Filter(backend.KeyGroupRange{Start: 3, End: 6}), []string{"nexmark.events.3", "nexmark.events.4", "nexmark.events.5"}; !slices.Equal(got, want) {
		t.Fatalf("Filter = %q, want %q", got, want)
	}
	for kg := range 300 {
		got, err := s.KeyGroup(s.For(kg))
		if err != nil || got != kg {
			t.Fatalf("KeyGroup(For(%d)) = %d, %v", kg, got, err)
		}
	}
	for _, bad := range []string{"nexmark.events", "nexmark.events.", "nexmark.events.x", "nexmark.events.-1", "nexmark.events.01", "other.3", "nexmark.events.1.2"} {
		if kg, err := s.KeyGroup(bad); err == nil {
			t.Errorf("KeyGroup(%q) = %d, want an error", bad, kg)
		}
	}
	for _, bad := range []string{"", ".a", "a.", "a..b", "a.*", "a.>", "a b"} {
		if err := (Subjects{Prefix: bad}).Validate(); err == nil {
			t.Errorf("Validate(%q) passed", bad)
		}
	}
}
