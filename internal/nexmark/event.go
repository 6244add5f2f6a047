package nexmark

import (
	"fmt"
	"time"
)

// Kind says which record an Event carries.
type Kind uint8

// The kinds of event.
const (
	KindPerson Kind = iota
	KindAuction
	KindBid
)

// String returns "person", "auction" or "bid".
func (k Kind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	case KindBid:
		return "bid"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Person is a new user of the auction site.
type Person struct {
	ID           int64
	Name         string
	EmailAddress string
	CreditCard   string
	City         string
	State        string
	DateTime     time.Time
	Extra        string
}

// Auction is an item put up for sale by Seller, a Person.ID.
type Auction struct {
	ID          int64
	ItemName    string
	Description string
	InitialBid  int64 // cents
	Reserve     int64 // cents
	DateTime    time.Time
	Expires     time.Time
	Seller      int64
	Category    int64
	Extra       string
}

// Bid is a bid of Bidder, a Person.ID, on Auction, an Auction.ID.
type Bid struct {
	Auction  int64
	Bidder   int64
	Price    int64 // cents
	Channel  string
	URL      string
	DateTime time.Time
	Extra    string
}

// Event is event number N of the stream. Only the field that Kind names
// is set.
type Event struct {
	N       int64
	Kind    Kind
	Person  Person
	Auction Auction
	Bid     Bid
}

// Time returns the event time of the record the event carries.
func (e *Event) Time() time.Time {
	switch e.Kind {
	case KindPerson:
		return e.Person.DateTime
	case KindAuction:
		return e.Auction.DateTime
	}
	return e.Bid.DateTime
}
