package nexmark

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrBadRecord reports bytes DecodeEvent cannot read.
var ErrBadRecord = errors.New("nexmark: bad event record")

// AppendEvent appends e's wire form to b: the kind, the event number, then
// the record's fields in declaration order, integers as varints, times as
// Unix milliseconds and strings length-prefixed.
func AppendEvent(b []byte, e *Event) []byte {
	b = append(b, byte(e.Kind))
	b = binary.AppendVarint(b, e.N)
	switch e.Kind {
	case KindPerson:
		p := &e.Person
		b = binary.AppendVarint(b, p.ID)
		b = appendStrings(b, p.Name, p.EmailAddress, p.CreditCard, p.City, p.State)
		b = binary.AppendVarint(b, p.DateTime.UnixMilli())
		b = appendStrings(b, p.Extra)
	case KindAuction:
		a := &e.Auction
		b = binary.AppendVarint(b, a.ID)
		b = appendStrings(b, a.ItemName, a.Description)
		for _, v := range [...]int64{a.InitialBid, a.Reserve, a.DateTime.UnixMilli(), a.Expires.UnixMilli(), a.Seller, a.Category} {
			b = binary.AppendVarint(b, v)
		}
		b = appendStrings(b, a.Extra)
	default:
		d := &e.Bid
		for _, v := range [...]int64{d.Auction, d.Bidder, d.Price} {
			b = binary.AppendVarint(b, v)
		}
		b = appendStrings(b, d.Channel, d.URL)
		b = binary.AppendVarint(b, d.DateTime.UnixMilli())
		b = appendStrings(b, d.Extra)
	}
	return b
}

func appendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeEvent reads an event AppendEvent wrote; trailing bytes are an
// error.
func DecodeEvent(b []byte) (Event, error) {
	r := reader{b: b}
	var e Event
	e.Kind = Kind(r.byte())
	e.N = r.int()
	ms := func() time.Time { return time.UnixMilli(r.int()).UTC() }
	switch e.Kind {
	case KindPerson:
		p := &e.Person
		p.ID = r.int()
		p.Name, p.EmailAddress, p.CreditCard, p.City, p.State = r.str(), r.str(), r.str(), r.str(), r.str()
		p.DateTime = ms()
		p.Extra = r.str()
	case KindAuction:
		a := &e.Auction
		a.ID = r.int()
		a.ItemName, a.Description = r.str(), r.str()
		a.InitialBid, a.Reserve = r.int(), r.int()
		a.DateTime, a.Expires = ms(), ms()
		a.Seller, a.Category = r.int(), r.int()
		a.Extra = r.str()
	case KindBid:
		d := &e.Bid
		d.Auction, d.Bidder, d.Price = r.int(), r.int(), r.int()
		d.Channel, d.URL = r.str(), r.str()
		d.DateTime = ms()
		d.Extra = r.str()
	default:
		return Event{}, fmt.Errorf("%w: kind %d", ErrBadRecord, e.Kind)
	}
	if r.err != nil {
		return Event{}, fmt.Errorf("%w: %s %d: %w", ErrBadRecord, e.Kind, e.N, r.err)
	}
	if len(r.b) != 0 {
		return Event{}, fmt.Errorf("%w: %s %d: %d trailing bytes", ErrBadRecord, e.Kind, e.N, len(r.b))
	}
	return e, nil
}

// reader reads the wire form, remembering the first error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	l, n := binary.Uvarint(r.b)
	if n <= 0 || l > uint64(len(r.b)-n) {
		r.fail(errShort)
		return ""
	}
	s := string(r.b[n : n+int(l)])
	r.b = r.b[n+int(l):]
	return s
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}
