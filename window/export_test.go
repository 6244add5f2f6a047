package window

// NextTimer returns the operator's next pending timer, for tests that
// check every window was cleaned up.
func NextTimer[K, IN, OUT any](o *Operator[K, IN, OUT]) (int64, bool) {
	return o.timers.NextEventTime()
}

// SetRegisteredLimit sets how many pending timers o remembers as
// registered (default 65,536), for tests of the limit.
func SetRegisteredLimit[K, IN, OUT any](o *Operator[K, IN, OUT], n int) { o.reg.limit = n }

// KeysRemembered reports whether an operator with keys of type K
// remembers the timers it registered.
func KeysRemembered[K any]() bool { return keyFunc[K]() != nil }
