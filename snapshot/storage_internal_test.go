package snapshot

import "testing"

// TestMayHold pins the pruning rule of Local.List: a directory is read
// only if a name with the prefix can be in it.
func TestMayHold(t *testing.T) {
	for _, c := range []struct {
		dir, prefix string
		want        bool
	}{
		{"shared", "chk-", false},
		{"chk-12", "chk-1", true},
		{"chk-12", "chk-12/", true},
		{"chk-12", "chk-13", false},
		{"chk-12/inc-a", "chk-12/", true},
		{"chk-12/inc-a", "chk-12/data", false},
		{"shared", "", true},
		{"shared/sub", "shared/s", true},
		{"shared/sub", "shared/a", false},
	} {
		if got := mayHold(c.dir, c.prefix); got != c.want {
			t.Errorf("mayHold(%q, %q) = %v, want %v", c.dir, c.prefix, got, c.want)
		}
	}
}
