package nexmark

import (
	"bytes"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Fixed rules of the stream, as in the original's GeneratorConfig.
const (
	// ProportionDenominator is the length of the cycle of event kinds:
	// of every 50 events, 1 is a person, 3 are auctions and 46 are bids.
	ProportionDenominator = 50
	personProportion      = 1
	auctionProportion     = 3

	FirstPersonID   = 1000 // id of the first person
	FirstAuctionID  = 1000 // id of the first auction
	FirstCategoryID = 10   // categories are FirstCategoryID + [0, NumCategories)
	NumCategories   = 5
	NumChannels     = 10_000 // channels besides the hot ones

	hotBatch        = 100 // hot ids are the first (or second) of the latest batch of 100
	personIDLead    = 10  // ids ahead of the newest person that bids may use
	auctionIDLead   = 10  // ids ahead of the newest auction that bids may use
	minStringLength = 3
)

// HotChannels are the channels that half of all bids come from.
var HotChannels = [...]string{"Google", "Facebook", "Baidu", "Apple"}

var (
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
)

// DefaultBaseTime is the event time of event 0 unless Config.BaseTime is
// set. The original uses the wall clock; a fixed time keeps runs equal.
var DefaultBaseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config tunes the generator. The zero value of every field but Seed means
// the Nexmark default, given in the field's doc.
type Config struct {
	// Seed selects the stream; the same seed gives the same events.
	Seed uint64
	// BaseTime is the event time of event 0. Default: DefaultBaseTime.
	BaseTime time.Time
	// FirstEventRate is the event rate in events per second, which spaces
	// event times. Default: 10,000.
	FirstEventRate int
	// NumEventGenerators is the number of generators sharing the rate, each
	// producing every NumEventGenerators-th event. Default: 1.
	NumEventGenerators int
	// NumInFlightAuctions is the number of recent auctions that cold bids
	// choose from. Default: 100.
	NumInFlightAuctions int
	// NumActivePeople is the number of recent people that cold bidders and
	// sellers are chosen from. Default: 1000.
	NumActivePeople int
	// HotAuctionRatio, HotSellersRatio and HotBiddersRatio r make a bid's
	// auction, an auction's seller and a bid's bidder the hot one with
	// probability 1 - 1/r. Defaults: 2, 4 and 4.
	HotAuctionRatio int
	HotSellersRatio int
	HotBiddersRatio int
	// AvgPersonByteSize, AvgAuctionByteSize and AvgBidByteSize are the
	// average record sizes that Extra pads to. Defaults: 200, 500 and 100.
	AvgPersonByteSize  int
	AvgAuctionByteSize int
	AvgBidByteSize     int
}

// withDefaults returns c with every zero field but Seed set to its default.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.BaseTime.IsZero() {
		c.BaseTime = DefaultBaseTime
	}
	def(&c.FirstEventRate, 10_000)
	def(&c.NumEventGenerators, 1)
	def(&c.NumInFlightAuctions, 100)
	def(&c.NumActivePeople, 1000)
	def(&c.HotAuctionRatio, 2)
	def(&c.HotSellersRatio, 4)
	def(&c.HotBiddersRatio, 4)
	def(&c.AvgPersonByteSize, 200)
	def(&c.AvgAuctionByteSize, 500)
	def(&c.AvgBidByteSize, 100)
	return c
}

// KindOf returns the kind of event number n.
func KindOf(n int64) Kind {
	switch rem := n % ProportionDenominator; {
	case rem < personProportion:
		return KindPerson
	case rem < personProportion+auctionProportion:
		return KindAuction
	}
	return KindBid
}

// Generator produces the events of one stream. It is not safe for
// concurrent use; give each goroutine its own.
type Generator struct {
	cfg     Config
	next    int64
	pcg     *rand.PCG
	r       *rand.Rand
	baseMs  int64
	delayUs float64 // between consecutive events
	buf     []byte
}

// New returns a generator of the stream cfg describes, positioned at event 0.
func New(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	pcg := rand.NewPCG(cfg.Seed, 0)
	return &Generator{
		cfg:     cfg,
		pcg:     pcg,
		r:       rand.New(pcg),
		baseMs:  cfg.BaseTime.UnixMilli(),
		delayUs: 1e6 / float64(cfg.FirstEventRate) * float64(cfg.NumEventGenerators),
	}
}

// Config returns the generator's configuration with defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Next returns the next event and advances the generator.
func (g *Generator) Next() Event {
	e := g.At(g.next)
	g.next++
	return e
}

// At returns event number n (n >= 0) without moving the generator.
func (g *Generator) At(n int64) Event {
	g.pcg.Seed(g.cfg.Seed, uint64(n))
	ts := g.timestampMs(n)
	e := Event{N: n, Kind: KindOf(n)}
	switch e.Kind {
	case KindPerson:
		e.Person = g.person(n, ts)
	case KindAuction:
		e.Auction = g.auction(n, ts)
	default:
		e.Bid = g.bid(n, ts)
	}
	return e
}

// timestampMs returns the event time of event n in Unix milliseconds.
func (g *Generator) timestampMs(n int64) int64 {
	return g.baseMs + int64(float64(n)*g.delayUs)/1000
}

func (g *Generator) person(n, ts int64) Person {
	p := Person{
		ID:   lastBase0PersonID(n) + FirstPersonID,
		Name: firstNames[g.r.IntN(len(firstNames))] + " " + lastNames[g.r.IntN(len(lastNames))],
	}
	p.EmailAddress = g.nextString(7) + "@" + g.nextString(5) + ".com"
	p.CreditCard = g.creditCard()
	p.City = usCities[g.r.IntN(len(usCities))]
	p.State = usStates[g.r.IntN(len(usStates))]
	p.DateTime = time.UnixMilli(ts).UTC()
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.nextExtra(size, g.cfg.AvgPersonByteSize)
	return p
}

func (g *Generator) auction(n, ts int64) Auction {
	a := Auction{ID: lastBase0AuctionID(n) + FirstAuctionID}
	if g.r.IntN(g.cfg.HotSellersRatio) > 0 {
		a.Seller = lastBase0PersonID(n) / hotBatch * hotBatch
	} else {
		a.Seller = g.nextBase0PersonID(n)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(g.r.IntN(NumCategories))
	a.InitialBid = g.nextPrice()
	a.DateTime = time.UnixMilli(ts).UTC()
	a.Expires = time.UnixMilli(ts + g.auctionLengthMs(n, ts)).UTC()
	a.ItemName = g.nextString(20)
	a.Description = g.nextString(100)
	a.Reserve = a.InitialBid + g.nextPrice()
	size := 8 + len(a.ItemName) + len(a.Description) + 8*5
	a.Extra = g.nextExtra(size, g.cfg.AvgAuctionByteSize)
	return a
}

// auctionLengthMs is 1 + U[0, 2*horizon), where the horizon is the time
// until NumInFlightAuctions more auctions have been generated.
func (g *Generator) auctionLengthMs(n, ts int64) int64 {
	eventsForAuctions := int64(g.cfg.NumInFlightAuctions) * ProportionDenominator / auctionProportion
	horizon := g.timestampMs(n+eventsForAuctions) - ts
	return 1 + g.r.Int64N(max(2*horizon, 1))
}

func (g *Generator) bid(n, ts int64) Bid {
	var b Bid
	if g.r.IntN(g.cfg.HotAuctionRatio) > 0 {
		b.Auction = lastBase0AuctionID(n) / hotBatch * hotBatch
	} else {
		b.Auction = g.nextBase0AuctionID(n)
	}
	b.Auction += FirstAuctionID
	if g.r.IntN(g.cfg.HotBiddersRatio) > 0 {
		// The second person of the batch, so hot bidders are not hot sellers.
		b.Bidder = lastBase0PersonID(n)/hotBatch*hotBatch + 1
	} else {
		b.Bidder = g.nextBase0PersonID(n)
	}
	b.Bidder += FirstPersonID
	b.Price = g.nextPrice()
	if g.r.IntN(2) > 0 {
		i := g.r.IntN(len(HotChannels))
		b.Channel, b.URL = HotChannels[i], hotURLs()[i]
	} else {
		c := coldChannels()[g.r.IntN(NumChannels)]
		b.Channel, b.URL = c.name, c.url
	}
	b.DateTime = time.UnixMilli(ts).UTC()
	b.Extra = g.nextExtra(32, g.cfg.AvgBidByteSize)
	return b
}

// lastBase0PersonID returns the 0-based id of the newest person at event n.
func lastBase0PersonID(n int64) int64 {
	epoch, offset := n/ProportionDenominator, n%ProportionDenominator
	if offset >= personProportion {
		offset = personProportion - 1
	}
	return epoch*personProportion + offset
}

// lastBase0AuctionID returns the 0-based id of the newest auction at event
// n (-1 before the first).
func lastBase0AuctionID(n int64) int64 {
	epoch, offset := n/ProportionDenominator, n%ProportionDenominator
	switch {
	case offset < personProportion:
		epoch--
		offset = auctionProportion - 1
	case offset >= personProportion+auctionProportion:
		offset = auctionProportion - 1
	default:
		offset -= personProportion
	}
	return epoch*auctionProportion + offset
}

// nextBase0PersonID picks one of the active people, or a few ids ahead.
func (g *Generator) nextBase0PersonID(n int64) int64 {
	numPeople := lastBase0PersonID(n) + 1
	active := min(numPeople, int64(g.cfg.NumActivePeople))
	return numPeople - active + g.r.Int64N(active+personIDLead)
}

// nextBase0AuctionID picks one of the auctions likely still in flight, or a
// few ids ahead.
func (g *Generator) nextBase0AuctionID(n int64) int64 {
	maxID := lastBase0AuctionID(n)
	minID := max(maxID-int64(g.cfg.NumInFlightAuctions), 0)
	return minID + g.r.Int64N(maxID-minID+1+auctionIDLead)
}

// nextPrice returns round(10^(6U) * 100): cents from 1.00 to 1,000,000.00,
// log-uniform.
func (g *Generator) nextPrice() int64 {
	return int64(math.Round(math.Pow(10, g.r.Float64()*6) * 100))
}

// nextString returns up to maxLength-1 lowercase letters with the odd
// space, trimmed.
func (g *Generator) nextString(maxLength int) string {
	n := minStringLength + g.r.IntN(maxLength-minStringLength)
	g.buf = g.buf[:0]
	for range n {
		if g.r.IntN(13) == 0 {
			g.buf = append(g.buf, ' ')
		} else {
			g.buf = append(g.buf, byte('a'+g.r.IntN(26)))
		}
	}
	return string(bytes.TrimSpace(g.buf))
}

// nextExtra pads a record of size bytes towards avg bytes: empty if the
// record is already larger, else avg-size bytes give or take 20%.
func (g *Generator) nextExtra(size, avg int) string {
	if size > avg {
		return ""
	}
	want := avg - size
	delta := int(math.Round(float64(want) * 0.2))
	n := want - delta
	if delta > 0 {
		n += g.r.IntN(2 * delta)
	}
	g.buf = g.buf[:0]
	for range n {
		g.buf = append(g.buf, byte('a'+g.r.IntN(26)))
	}
	return string(g.buf)
}

func (g *Generator) creditCard() string {
	g.buf = g.buf[:0]
	for i := range 4 {
		if i > 0 {
			g.buf = append(g.buf, ' ')
		}
		d := g.r.IntN(10_000)
		g.buf = append(g.buf, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
	}
	return string(g.buf)
}

const baseURL = "https://www.nexmark.com/item.htm?query=1&channel_id="

type channel struct{ name, url string }

// coldChannels names the NumChannels ordinary channels and their URLs,
// built once.
var coldChannels = sync.OnceValue(func() []channel {
	cs := make([]channel, NumChannels)
	for i := range cs {
		id := strconv.FormatUint(uint64(bits.Reverse32(uint32(i))&math.MaxInt32), 10)
		cs[i] = channel{name: "channel-" + strconv.Itoa(i), url: baseURL + id}
	}
	return cs
})

var hotURLs = sync.OnceValue(func() []string {
	us := make([]string, len(HotChannels))
	for i, c := range HotChannels {
		us[i] = baseURL + c
	}
	return us
})
