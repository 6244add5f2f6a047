package backend

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// DefaultTimerCacheSize is the number of timers per key group and time
// domain a timer service keeps in memory when its descriptor does not say:
// Flink's default timer-service cache size.
const DefaultTimerCacheSize = 128

// Time domains of a timer service, stored as the byte after the key group
// in a timer's key (internal/keys/FORMAT.md). Never renumber them.
const (
	eventTime      byte = 0
	processingTime byte = 1
)

// TimerServiceDescriptor describes a timer service: event-time and
// processing-time timers per key, namespace and timestamp.
type TimerServiceDescriptor[N any] struct {
	Name           string   // unique among the backend's states
	NamespaceCodec Codec[N] // encodes the timers' namespaces (Void for none)
	// CacheSize is how many of each key group's next timers, per time
	// domain, are kept in memory; 0 means DefaultTimerCacheSize. It is not
	// recorded: a service registered again may use another size.
	CacheSize int
}

// TimerService holds event-time and processing-time timers, like Flink's
// InternalTimerService on its RocksDB timer queues. A timer is a (key,
// namespace, timestamp) triple in a time domain: registering one that
// exists keeps one. Timers are stored in Pebble as a state of their own,
// so snapshots (full and incremental) hold them and restores rescale them
// with their key group; TTL never applies to them.
//
// Register and delete act on the backend's current key. AdvanceWatermark
// and AdvanceProcessingTime fire the timers that are due, in timestamp
// order; timers with equal timestamps fire by key group, then by the
// encoded key, then by the encoded namespace (the order of their keys in
// Pebble). While a timer fires, the backend's current key is the timer's
// key; afterwards it stays the key of the last timer fired. A timer is
// removed just before it fires, as Flink polls it: if fire fails, the
// advance stops and returns the error, and that timer is gone (the task
// should then fail over to a checkpoint, as Flink's would). A timer
// registered while firing at a timestamp the advance covers fires in the
// same advance, so a fire that keeps registering its own timer again
// never returns.
//
// Writes made while timers fire are batched and committed when the
// advance returns, so fire must not snapshot, flush or close the backend
// (a framework takes checkpoints between records and timers, as Flink
// does). After an I/O error reading timers the service refuses every use.
//
// Like every state, a TimerService is used by the backend's one task
// goroutine.
type TimerService[K, N any] struct {
	b       *Backend[K]
	name    string
	id      uint16
	nsCodec Codec[N]
	nsFixed int
	queues  [2]*timerQueue // by domain
	writes  *timerWrites
	buf     []byte
	nsBuf   []byte

	firing    bool
	watermark int64
	stats     *timerCounters
}

// TimerStats counts a timer service's operations since it was registered
// in this process, and the timers it holds.
type TimerStats struct {
	Registered uint64 // register calls, duplicates included
	Deleted    uint64 // delete calls, of timers that existed or not
	Fired      uint64 // timers fired
	// Pending is the number of timers stored, due or not, of both time
	// domains. It is counted when the service is registered (after Open or
	// a restore: one scan of its timers, keys only) and kept up to date
	// without reading the database, so it is exact while PendingExact is
	// true. A register or delete of a timer beyond the first CacheSize
	// timers of its key group cannot tell, without a read, whether the
	// timer existed (a read per call costs several times the write): it
	// counts a register as a new timer and a delete as removing one, and
	// PendingExact is false from then until every such key group's
	// timers fit in its cache again (as they fire), when each count is
	// set from the cache.
	Pending uint64
	// PendingExact reports whether Pending is exact.
	PendingExact bool
}

// GetTimerService registers a timer service, or returns the one already
// registered under the descriptor's name (whose namespace codec must
// match). Its timers are kept across reopening and restores under its
// name, which is a state name like any other.
func GetTimerService[K, N any](b *Backend[K], d TimerServiceDescriptor[N]) (*TimerService[K, N], error) {
	if err := checkDescriptor(d.Name, ttl.Config{}, role{"namespace", d.NamespaceCodec}); err != nil {
		return nil, err
	}
	size := d.CacheSize
	switch {
	case size == 0:
		size = DefaultTimerCacheSize
	case size < 0:
		return nil, fmt.Errorf("%w: timer service %q: cache size %d is negative", ErrInvalidArgument, d.Name, size)
	}
	m := meta.State{Name: d.Name, Kind: meta.KindTimers, NamespaceCodec: d.NamespaceCodec.Name(), ValueCodec: Void.Name()}
	return register(b, m, ttl.Config{}, func(m meta.State) (*TimerService[K, N], error) {
		s := &TimerService[K, N]{b: b, name: m.Name, id: m.ID, nsCodec: d.NamespaceCodec,
			nsFixed: fixedSize(d.NamespaceCodec), watermark: math.MinInt64, writes: &timerWrites{st: b.st, closed: &b.closed}}
		s.stats = &timerCounters{name: m.Name}
		for dom := range s.queues {
			q, err := newTimerQueue(s.writes, m.ID, byte(dom), b.opts.KeyGroups, b.kgWidth, size, s.stats)
			if err != nil {
				return nil, s.wrap("open", err)
			}
			s.queues[dom] = q
		}
		b.timerReg.add(s.stats)
		return s, nil
	})
}

// Name returns the service's registered name.
func (s *TimerService[K, N]) Name() string { return s.name }

// RegisterEventTimeTimer registers a timer for the current key and
// namespace ns that fires when the watermark reaches ts.
func (s *TimerService[K, N]) RegisterEventTimeTimer(ns N, ts int64) error {
	return s.register(eventTime, ns, ts)
}

// DeleteEventTimeTimer deletes the current key's event-time timer at ns
// and ts, if there is one.
func (s *TimerService[K, N]) DeleteEventTimeTimer(ns N, ts int64) error {
	return s.delete(eventTime, ns, ts)
}

// RegisterProcessingTimeTimer registers a timer for the current key and
// namespace ns that fires when processing time (the backend's clock, in
// Unix milliseconds) reaches ts.
func (s *TimerService[K, N]) RegisterProcessingTimeTimer(ns N, ts int64) error {
	return s.register(processingTime, ns, ts)
}

// DeleteProcessingTimeTimer deletes the current key's processing-time
// timer at ns and ts, if there is one.
func (s *TimerService[K, N]) DeleteProcessingTimeTimer(ns N, ts int64) error {
	return s.delete(processingTime, ns, ts)
}

// AdvanceWatermark fires, in order, every event-time timer with a
// timestamp of at most wm, including those registered while it fires, and
// records wm as the current watermark if it is later. fire may use the
// backend and this service (it may not advance time itself).
func (s *TimerService[K, N]) AdvanceWatermark(wm int64, fire func(key K, ns N, ts int64) error) error {
	if err := s.advance(eventTime, wm, fire); err != nil {
		return err
	}
	s.watermark = max(s.watermark, wm)
	return nil
}

// CurrentWatermark returns the latest watermark AdvanceWatermark reached
// in this process, or math.MinInt64. It is not part of snapshots, as in
// Flink, where watermarks are not keyed state.
func (s *TimerService[K, N]) CurrentWatermark() int64 { return s.watermark }

// AdvanceProcessingTime fires, in order, every processing-time timer with
// a timestamp of at most the backend's clock (Options.Clock) in Unix
// milliseconds, read once when it starts.
func (s *TimerService[K, N]) AdvanceProcessingTime(fire func(key K, ns N, ts int64) error) error {
	return s.advance(processingTime, s.b.opts.Clock.Now().UnixMilli(), fire)
}

// NextEventTime returns the timestamp of the next event-time timer, if
// there is one.
func (s *TimerService[K, N]) NextEventTime() (int64, bool) { return s.next(eventTime) }

// NextProcessingTime returns the timestamp of the next processing-time
// timer, if there is one: when a framework should next call
// AdvanceProcessingTime.
func (s *TimerService[K, N]) NextProcessingTime() (int64, bool) { return s.next(processingTime) }

// Stats returns the service's counters. Unlike the rest of the service,
// it may be called from any goroutine (Backend.Metrics reports them too).
func (s *TimerService[K, N]) Stats() TimerStats { return s.stats.stats() }

func (s *TimerService[K, N]) next(dom byte) (int64, bool) {
	q := s.queues[dom]
	i := q.head()
	if i < 0 {
		return 0, false
	}
	return decodeTimestamp(q.first(i)[q.prefix:]), true
}

// timerKey builds [state id][key group][domain][timestamp][key][namespace]
// for the current key in s.buf.
func (s *TimerService[K, N]) timerKey(dom byte, ns N, ts int64) ([]byte, int, error) {
	b := s.b
	if b.closed.Load() {
		return nil, 0, ErrClosed
	}
	if !b.cur.set {
		return nil, 0, ErrNoCurrentKey
	}
	if err := s.broken(); err != nil {
		return nil, 0, err
	}
	raw, err := s.nsCodec.Append(s.nsBuf[:0], ns)
	s.nsBuf = raw[:0]
	if err != nil {
		return nil, 0, s.wrap("encode namespace", err)
	}
	buf := keys.AppendStateID(s.buf[:0], s.id)
	buf = append(buf, b.cur.enc[:b.kgWidth]...)
	buf = append(buf, dom)
	buf = binary.BigEndian.AppendUint64(buf, uint64(ts)^(1<<63))
	buf = append(buf, b.cur.enc[b.kgWidth:]...)
	if buf, err = keys.AppendComponent(buf, raw, s.nsFixed); err != nil {
		return nil, 0, fmt.Errorf("%w: timer service %q: namespace codec %q: %w", ErrInvalidArgument, s.name, s.nsCodec.Name(), err)
	}
	s.buf = buf
	return buf, b.cur.kg - b.opts.KeyGroups.Start, nil
}

func (s *TimerService[K, N]) register(dom byte, ns N, ts int64) error {
	key, i, err := s.timerKey(dom, ns, ts)
	if err != nil {
		return err
	}
	if err := s.writes.set(key); err != nil {
		return s.wrap("register", err)
	}
	s.queues[dom].added(i, key)
	s.stats.registered.Add(1)
	return nil
}

func (s *TimerService[K, N]) delete(dom byte, ns N, ts int64) error {
	key, i, err := s.timerKey(dom, ns, ts)
	if err != nil {
		return err
	}
	if err := s.writes.delete(key); err != nil {
		return s.wrap("delete", err)
	}
	s.stats.deleted.Add(1)
	return s.wrapIf("delete", s.queues[dom].removed(i, key))
}

// advance fires the timers of domain dom due at limit.
func (s *TimerService[K, N]) advance(dom byte, limit int64, fire func(K, N, int64) error) error {
	if fire == nil {
		return fmt.Errorf("%w: timer service %q: fire is nil", ErrInvalidArgument, s.name)
	}
	if s.firing {
		return fmt.Errorf("%w: timer service %q: time advanced while its timers fire", ErrInvalidArgument, s.name)
	}
	if err := s.broken(); err != nil {
		return err
	}
	s.firing = true
	s.writes.begin()
	defer func() { s.firing = false }()
	err := s.fireDue(dom, limit, fire)
	if ferr := s.writes.end(); err == nil && ferr != nil {
		err = s.wrap("fire", ferr)
	}
	return err
}

func (s *TimerService[K, N]) fireDue(dom byte, limit int64, fire func(K, N, int64) error) error {
	b, q := s.b, s.queues[dom]
	for {
		if b.closed.Load() {
			return ErrClosed
		}
		i := q.head()
		if i < 0 {
			return nil
		}
		k := q.first(i)
		ts := decodeTimestamp(k[q.prefix:])
		if ts > limit {
			return nil
		}
		key, ns, kgAndKey, err := s.decode(k)
		if err != nil {
			return err
		}
		if err := s.writes.delete(k); err != nil {
			return s.wrap("fire", err)
		}
		q.count(i, -1) // before popFront, whose reload may set the count
		if err := q.popFront(i); err != nil {
			return s.wrap("fire", err)
		}
		s.stats.fired.Add(1)
		if err := b.setCurrentKeyEncoded(key, q.kgStart+i, kgAndKey); err != nil {
			return err
		}
		if err := fire(key, ns, ts); err != nil {
			return fmt.Errorf("timer service %q: fire timer at %d: %w", s.name, ts, err)
		}
	}
}

// decode splits a timer's key into its key and namespace, and returns its
// [key group][key component] (reused by the next call).
func (s *TimerService[K, N]) decode(k []byte) (K, N, []byte, error) {
	var key K
	var ns N
	b := s.b
	q := s.queues[0]
	at := q.prefix + 8
	keyComp, rest, err := keys.SplitComponent(k[at:], b.keyFixed)
	if err != nil {
		return key, ns, nil, s.corrupt(k, "key", err)
	}
	framedKey := k[at : len(k)-len(rest)]
	nsComp, rest, err := keys.SplitComponent(rest, s.nsFixed)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the namespace", len(rest))
	}
	if err != nil {
		return key, ns, nil, s.corrupt(k, "namespace", err)
	}
	if key, err = b.keyCodec.Decode(keyComp); err != nil {
		return key, ns, nil, s.corrupt(k, "decode key", err)
	}
	if ns, err = s.nsCodec.Decode(nsComp); err != nil {
		return key, ns, nil, s.corrupt(k, "decode namespace", err)
	}
	s.buf = append(append(s.buf[:0], k[keys.StateIDLen:keys.StateIDLen+b.kgWidth]...), framedKey...)
	return key, ns, s.buf, nil
}

func (s *TimerService[K, N]) wrap(op string, err error) error {
	return fmt.Errorf("backend: timer service %q: %s: %w", s.name, op, err)
}

func (s *TimerService[K, N]) wrapIf(op string, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(op, err)
}

func (s *TimerService[K, N]) corrupt(k []byte, what string, err error) error {
	return fmt.Errorf("%w: timer service %q: timer %x: %s: %w", ErrCorrupt, s.name, k, what, err)
}

// broken returns the error of a failed load, after which the service
// refuses every use: its caches may not hold the first timers any more.
// The backend should be closed and restored from a checkpoint.
func (s *TimerService[K, N]) broken() error {
	for _, q := range s.queues {
		if q.err != nil {
			return s.wrap("unusable after an earlier error", q.err)
		}
	}
	return nil
}

func decodeTimestamp(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// setCurrentKeyEncoded is SetCurrentKey for a key whose key group and
// encoded [key group][key component] are known, as a timer's are.
func (b *Backend[K]) setCurrentKeyEncoded(k K, kg int, enc []byte) error {
	b.cur.enc = append(b.cur.enc[:0], enc...)
	b.cur.key, b.cur.kg, b.cur.set = k, kg, true
	for _, c := range b.onKey {
		if err := c.accessed(); err != nil {
			return err
		}
	}
	return nil
}
