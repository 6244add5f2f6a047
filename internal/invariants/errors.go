package invariants

import "errors"

// ErrViolated is wrapped by the error Check panics with when the invariants
// tag is set and a condition fails.
var ErrViolated = errors.New("invariant violated")
