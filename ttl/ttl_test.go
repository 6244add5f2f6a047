package ttl_test

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestTTLExpiresAt checks the expiration time, including Flink's overflow
// rule: for a positive stamp the sum saturates at MaxInt64; for a stamp at
// or below zero it is the plain sum.
func TestTTLExpiresAt(t *testing.T) {
	const max = math.MaxInt64
	for _, tc := range []struct {
		name    string
		ts, ttl int64
		want    int64
	}{
		{"plain", 1_000, 100, 1_100},
		{"zero ttl", 1_000, 0, 1_000},
		{"stamp zero", 0, 100, 100},
		{"negative stamp", -50, 100, 50},
		{"negative stamp, huge ttl", -1, max, max - 1},
		{"min stamp, huge ttl", math.MinInt64, max, -1},
		{"saturates", max - 10, 100, max},
		{"exactly fits", max - 100, 100, max},
		{"one below fits", max - 101, 100, max - 1},
		{"stamp max", max, 1, max},
		{"stamp one, ttl max", 1, max, max},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ttl.ExpiresAt(tc.ts, tc.ttl); got != tc.want {
				t.Fatalf("ExpiresAt(%d, %d) = %d; want %d", tc.ts, tc.ttl, got, tc.want)
			}
		})
	}
}

// TestTTLExpired checks the predicate around the boundary: alive just
// before ts+ttl, expired exactly at ts+ttl and after.
func TestTTLExpired(t *testing.T) {
	const max = math.MaxInt64
	for _, tc := range []struct {
		name         string
		ts, ttl, now int64
		want         bool
	}{
		{"long before", 1_000, 100, 0, false},
		{"at the stamp", 1_000, 100, 1_000, false},
		{"just before", 1_000, 100, 1_099, false},
		{"exactly at expiry", 1_000, 100, 1_100, true},
		{"just after", 1_000, 100, 1_101, true},
		{"ttl 1ms at the stamp", 5, 1, 5, false},
		{"ttl 1ms one later", 5, 1, 6, true},
		{"saturated, now max-1", max - 10, 100, max - 1, false},
		// The saturated expiry is MaxInt64 itself, which is <= MaxInt64.
		{"saturated, now max", max - 10, 100, max, true},
		{"negative stamp just before", -100, 50, -51, false},
		{"negative stamp at expiry", -100, 50, -50, true},
		{"zero stamp at expiry", 0, 10, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ttl.Expired(tc.ts, tc.ttl, tc.now); got != tc.want {
				t.Fatalf("Expired(ts=%d, ttl=%d, now=%d) = %v; want %v", tc.ts, tc.ttl, tc.now, got, tc.want)
			}
		})
	}
}

func TestTTLMillis(t *testing.T) {
	tm := time.UnixMilli(1_234_567).Add(999 * time.Microsecond)
	if got := ttl.Millis(tm); got != 1_234_567 {
		t.Fatalf("Millis = %d; want 1234567 (truncated)", got)
	}
	if got := ttl.Millis(time.UnixMilli(-5)); got != -5 {
		t.Fatalf("Millis(-5ms) = %d", got)
	}
}

func TestTTLStampRoundTrip(t *testing.T) {
	for _, ts := range []int64{0, 1, -1, 1_700_000_000_000, math.MaxInt64, math.MinInt64} {
		raw := ttl.AppendStamp([]byte("x"), ts)
		if len(raw) != 1+ttl.StampLen {
			t.Fatalf("AppendStamp appended %d bytes; want %d", len(raw)-1, ttl.StampLen)
		}
		raw = append(raw, "user"...)
		got, user, err := ttl.SplitStamp(raw[1:])
		if err != nil || got != ts || string(user) != "user" {
			t.Fatalf("SplitStamp = %d, %q, %v; want %d, user, nil", got, user, err, ts)
		}
	}
	// Stamps are big-endian so that the stored form is stable.
	if raw := ttl.AppendStamp(nil, 0x0102030405060708); !bytes.Equal(raw, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("AppendStamp = %x; want big-endian 0102030405060708", raw)
	}
	// A stamp with no user bytes is a valid (empty) value.
	if _, user, err := ttl.SplitStamp(ttl.AppendStamp(nil, 7)); err != nil || len(user) != 0 {
		t.Fatalf("SplitStamp(stamp only) = %q, %v", user, err)
	}
	for n := range ttl.StampLen {
		if _, _, err := ttl.SplitStamp(make([]byte, n)); !errors.Is(err, ttl.ErrMalformed) {
			t.Fatalf("SplitStamp(%d bytes) error = %v; want ErrMalformed", n, err)
		}
	}
}

// stamped returns a single-stamped value.
func stamped(ts int64, user string) []byte {
	return append(ttl.AppendStamp(nil, ts), user...)
}

// list frames elements, each stamped at its ts.
func list(elems ...any) []byte {
	var out []byte
	for i := 0; i < len(elems); i += 2 {
		out = listfmt.AppendElement(out, stamped(int64(elems[i].(int)), elems[i+1].(string)))
	}
	return out
}

// users decodes a stamped list into its user values, failing on bad framing.
func users(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	for len(raw) > 0 {
		elem, rest, err := listfmt.Next(raw)
		if err != nil {
			t.Fatalf("bad framing in filter output: %v", err)
		}
		_, u, err := ttl.SplitStamp(elem)
		if err != nil {
			t.Fatalf("bad element in filter output: %v", err)
		}
		out = append(out, string(u))
		raw = rest
	}
	return out
}

func TestTTLFilterSingle(t *testing.T) {
	const ttlMs = 100
	for _, tc := range []struct {
		name string
		ts   int64
		now  int64
		want ttl.Verdict
	}{
		{"fresh", 1_000, 1_000, ttl.Keep},
		{"just before", 1_000, 1_099, ttl.Keep},
		{"exactly at expiry", 1_000, 1_100, ttl.Drop},
		{"long expired", 1_000, 1_000_000, ttl.Drop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			v, out, err := filter(ttl.Single, stamped(tc.ts, "value"), ttlMs, tc.now, dst)
			if err != nil || v != tc.want {
				t.Fatalf("Filter = %v, %v; want %v, nil", v, err, tc.want)
			}
			if string(out) != "prefix" {
				t.Fatalf("Filter changed dst to %q", out)
			}
		})
	}
	for n := range ttl.StampLen {
		v, _, err := filter(ttl.Single, make([]byte, n), ttlMs, 0, nil)
		if !errors.Is(err, ttl.ErrMalformed) || v != ttl.Keep {
			t.Fatalf("Filter(%d-byte value) = %v, %v; want Keep, ErrMalformed", n, v, err)
		}
	}
}

func TestTTLFilterListElements(t *testing.T) {
	const ttlMs = 100
	for _, tc := range []struct {
		name string
		raw  []byte
		now  int64
		want ttl.Verdict
		kept []string // for Rewrite
	}{
		{"empty list", nil, 5_000, ttl.Keep, nil},
		{"all fresh", list(1_000, "a", 1_050, "b"), 1_099, ttl.Keep, nil},
		{"all expired", list(1_000, "a", 1_050, "b"), 1_150, ttl.Drop, nil},
		{"one element exactly at expiry", list(1_000, "a"), 1_100, ttl.Drop, nil},
		{"expired prefix", list(1_000, "a", 1_010, "b", 1_050, "c"), 1_110, ttl.Rewrite, []string{"c"}},
		{"boundary inside", list(1_000, "a", 1_001, "b"), 1_100, ttl.Rewrite, []string{"b"}},
		// Merged namespaces can put older elements after newer ones: every
		// expired element goes, not only a prefix, and order is kept.
		{"expired in the middle", list(1_050, "a", 1_000, "b", 1_060, "c"), 1_100, ttl.Rewrite, []string{"a", "c"}},
		{"expired at the end", list(1_050, "a", 1_060, "b", 900, "c"), 1_100, ttl.Rewrite, []string{"a", "b"}},
		{"empty user bytes", list(1_050, "", 1_000, ""), 1_100, ttl.Rewrite, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("pre")
			v, out, err := filter(ttl.ListElements, tc.raw, ttlMs, tc.now, dst)
			if err != nil || v != tc.want {
				t.Fatalf("Filter = %v, %v; want %v, nil", v, err, tc.want)
			}
			if !bytes.HasPrefix(out, []byte("pre")) {
				t.Fatalf("Filter lost dst's prefix: %q", out)
			}
			got := out[3:]
			switch v {
			case ttl.Keep, ttl.Drop:
				if len(got) != 0 {
					t.Fatalf("Filter appended %x for %v", got, v)
				}
			case ttl.Rewrite:
				if u := users(t, got); !equal(u, tc.kept) {
					t.Fatalf("Rewrite kept %q; want %q", u, tc.kept)
				}
				// The kept elements are the stored ones, stamps untouched.
				for rest := got; len(rest) > 0; {
					elem, r, _ := listfmt.Next(rest)
					ts, _, _ := ttl.SplitStamp(elem)
					if ttl.Expired(ts, ttlMs, tc.now) {
						t.Fatalf("Rewrite kept an expired element stamped %d", ts)
					}
					rest = r
				}
			}
		})
	}
}

func TestTTLFilterMalformedList(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"bad varint", []byte{0xff}},
		{"length past end", []byte{20, 1, 2}},
		{"element shorter than stamp", listfmt.AppendElement(nil, []byte{1, 2, 3})},
		{"good then short element", append(list(1_000, "a"), listfmt.AppendElement(nil, []byte{1})...)},
		{"good then truncated framing", append(list(1_000, "a"), 30)},
		{"expired then bad", append(list(1, "old"), 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("pre")
			var (
				v   ttl.Verdict
				out []byte
				err error
			)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Filter panicked on malformed input: %v", r)
					}
				}()
				v, out, err = filter(ttl.ListElements, tc.raw, 100, 1_050, dst)
			}()
			if err == nil {
				t.Fatalf("Filter(%x) = %v, nil error; want an error", tc.raw, v)
			}
			if !errors.Is(err, ttl.ErrMalformed) && !errors.Is(err, listfmt.ErrMalformed) {
				t.Fatalf("Filter error %v wraps neither ttl.ErrMalformed nor listfmt.ErrMalformed", err)
			}
			if v != ttl.Keep {
				t.Fatalf("Filter verdict on malformed input = %v; want Keep", v)
			}
			if string(out) != "pre" {
				t.Fatalf("Filter returned dst %q on error; want it unchanged", out)
			}
		})
	}
}

func TestTTLConfigEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ttl.Config
		want bool
	}{
		{"zero value", ttl.Config{}, false},
		{"ttl set", ttl.Config{TTL: time.Second}, true},
		{"read and write", ttl.Config{TTL: time.Second, Update: ttl.OnReadAndWrite}, true},
		{"update disabled", ttl.Config{TTL: time.Second, Update: ttl.Disabled}, false},
		{"update set, no ttl", ttl.Config{Update: ttl.OnReadAndWrite}, false},
	} {
		if got := tc.cfg.Enabled(); got != tc.want {
			t.Errorf("%s: Enabled = %v; want %v", tc.name, got, tc.want)
		}
	}
	if got := (ttl.Config{TTL: 1500 * time.Millisecond}).Millis(); got != 1500 {
		t.Fatalf("Millis = %d; want 1500", got)
	}
}

func TestTTLConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ttl.Config
		ok   bool
	}{
		{"zero value (off)", ttl.Config{}, true},
		{"1ms", ttl.Config{TTL: time.Millisecond}, true},
		{"full", ttl.Config{TTL: time.Hour, Update: ttl.OnReadAndWrite, Visibility: ttl.ReturnExpiredIfNotCleanedUp,
			Cleanup: ttl.Cleanup{QueryTimeAfterNumEntries: 10, OnAccess: ttl.AccessCleanup{Enabled: true, Size: 3}}}, true},
		{"disabled update", ttl.Config{TTL: time.Hour, Update: ttl.Disabled}, true},
		{"negative ttl", ttl.Config{TTL: -time.Second}, false},
		{"sub-millisecond ttl", ttl.Config{TTL: 999 * time.Microsecond}, false},
		{"1ns", ttl.Config{TTL: 1}, false},
		{"unknown update type", ttl.Config{TTL: time.Hour, Update: ttl.Disabled + 1}, false},
		{"unknown visibility", ttl.Config{TTL: time.Hour, Visibility: ttl.ReturnExpiredIfNotCleanedUp + 1}, false},
		{"negative query interval", ttl.Config{TTL: time.Hour, Cleanup: ttl.Cleanup{QueryTimeAfterNumEntries: -1}}, false},
		{"negative access cleanup size", ttl.Config{TTL: time.Hour, Cleanup: ttl.Cleanup{OnAccess: ttl.AccessCleanup{Enabled: true, Size: -1}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate = %v; want nil", err)
			}
			if !tc.ok && !errors.Is(err, ttl.ErrInvalidConfig) {
				t.Fatalf("Validate = %v; want ErrInvalidConfig", err)
			}
		})
	}
	// Every problem is reported, not only the first.
	err := ttl.Config{TTL: -1, Update: 9, Visibility: 9}.Validate()
	if err == nil {
		t.Fatal("Validate of a config with three problems = nil")
	}
	for _, want := range []string{"TTL", "update type", "visibility"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
}

func TestTTLConfigEnsureDefaults(t *testing.T) {
	var c ttl.Config
	c.EnsureDefaults()
	if c.Cleanup.QueryTimeAfterNumEntries != ttl.DefaultQueryTimeAfterNumEntries || c.Cleanup.OnAccess.Size != ttl.DefaultAccessCleanupSize {
		t.Fatalf("EnsureDefaults on zero = %+v", c.Cleanup)
	}
	if ttl.DefaultQueryTimeAfterNumEntries != 1000 || ttl.DefaultAccessCleanupSize != 5 {
		t.Fatalf("defaults = %d, %d; want Flink's 1000, 5", ttl.DefaultQueryTimeAfterNumEntries, ttl.DefaultAccessCleanupSize)
	}
	// Zero means default; the other fields stay as they are, and set
	// values are not overwritten.
	c = ttl.Config{TTL: time.Minute, Update: ttl.OnReadAndWrite, Visibility: ttl.ReturnExpiredIfNotCleanedUp,
		Cleanup: ttl.Cleanup{DisableBackground: true, QueryTimeAfterNumEntries: 7, FullSnapshot: true,
			OnAccess: ttl.AccessCleanup{Enabled: true, Size: 2, OnEveryKey: true}}}
	want := c
	c.EnsureDefaults()
	if c != want {
		t.Fatalf("EnsureDefaults changed set fields: %+v; want %+v", c, want)
	}
	// The defaults are still valid.
	c = ttl.Config{TTL: time.Second}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The zero value is TTL off with the default update type and visibility.
	var zero ttl.Config
	if zero.Update != ttl.OnCreateAndWrite || zero.Visibility != ttl.NeverReturnExpired || zero.Cleanup.DisableBackground {
		t.Fatalf("zero config defaults: %+v", zero)
	}
}

func TestTTLManualClock(t *testing.T) {
	var zero ttl.ManualClock
	if got := zero.Now(); !got.Equal(time.UnixMilli(0)) {
		t.Fatalf("zero ManualClock reads %v; want the Unix epoch", got)
	}
	zero.Advance(5 * time.Millisecond)
	if got := ttl.Millis(zero.Now()); got != 5 {
		t.Fatalf("zero ManualClock advanced by 5ms reads %dms; want 5", got)
	}

	start := time.UnixMilli(1_700_000_000_000)
	c := ttl.NewManualClock(start)
	first, second := c.Now(), c.Now()
	if !first.Equal(start) || !second.Equal(start) {
		t.Fatalf("ManualClock moved by itself: read %v, then %v; want %v twice", first, second, start)
	}
	c.Advance(1500 * time.Millisecond)
	if got := c.Now(); !got.Equal(start.Add(1500 * time.Millisecond)) {
		t.Fatalf("after Advance: %v", got)
	}
	c.Set(time.UnixMilli(42))
	if got := ttl.Millis(c.Now()); got != 42 {
		t.Fatalf("after Set: %dms; want 42", got)
	}
	// Moving back is allowed: it is a manual clock.
	c.Advance(-2 * time.Millisecond)
	if got := ttl.Millis(c.Now()); got != 40 {
		t.Fatalf("after Advance(-2ms): %dms; want 40", got)
	}

	// Safe for concurrent use (run under -race).
	c.Set(time.UnixMilli(0))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got := ttl.Millis(c.Now()); got != 4000 {
		t.Fatalf("after 4000 concurrent 1ms advances: %dms", got)
	}
	var _ ttl.Clock = c
}

func TestTTLSystemClock(t *testing.T) {
	before := time.Now()
	got := ttl.SystemClock{}.Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("SystemClock.Now = %v, not within [%v, %v]", got, before, after)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// filter is Judge without restamping, for the tests of what expires.
func filter(layout ttl.Layout, raw []byte, ttlMs, now int64, dst []byte) (ttl.Verdict, []byte, error) {
	v, out, _, err := ttl.Judge(layout, raw, ttl.Policy{TTLMillis: ttlMs}, now, dst)
	return v, out, err
}
