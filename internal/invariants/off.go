//go:build !invariants && !race

package invariants

// Enabled is false: this build has neither the invariants tag nor the
// race detector, so Check does nothing and code guarded by Enabled is
// compiled out. Do not change what the code computes on it.
const Enabled = false

// Check does nothing in this build. With the invariants tag or the race
// detector it panics, with an error wrapping ErrViolated, when cond is
// false.
func Check(cond bool, format string, args ...any) {}
