package window

// NextTimer returns the operator's next pending timer, for tests that
// check every window was cleaned up.
func NextTimer[K, IN, OUT any](o *Operator[K, IN, OUT]) (int64, bool) {
	return o.timers.NextEventTime()
}
