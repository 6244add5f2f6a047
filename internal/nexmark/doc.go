// Package nexmark generates the Nexmark benchmark's event stream (people
// registering, auctions opening, bids arriving) deterministically, for the
// demo job and the tests.
//
// It is our own code, written from the generator of the nexmark/nexmark
// project (nexmark-flink's generator and NexmarkConfiguration), whose rules
// it follows:
//
//   - Event n's kind is n % 50: 0 is a person, 1-3 an auction, the rest
//     bids, so person:auction:bid = 1:3:46.
//   - Person and auction ids start at 1000 and grow by one per person or
//     auction; categories are 10..14.
//   - Bids go to a hot auction (the first of the latest batch of 100
//     auctions) with probability 1 - 1/HotAuctionRatio, else to one of the
//     auctions still in flight; bidders and sellers likewise, with the
//     first (sellers) or second (bidders) person of the latest batch of
//     100 as the hot one.
//   - Prices are round(10^(6U) * 100) cents; half the bids come from four
//     hot channels, the rest from 10,000 others.
//   - Event n happens at BaseTime + n * interEventDelay, where the delay is
//     one second over FirstEventRate.
//   - Records are padded with Extra to average 200 (person), 500 (auction)
//     and 100 (bid) bytes.
//
// # Determinism
//
// Event n is a pure function of the seed and n: its random numbers come
// from a PCG seeded with (Config.Seed, n), as the original seeds a Random
// with the event id. Any event can be produced on its own with At, and a
// stream can be split among generators without coordination.
//
// # Caveats
//
// Only the constant-rate shape is implemented (the original's default, as
// its first and next event rates are equal), and events are in order: the
// out-of-order grouping and occasional delays are left out. URLs are a
// function of the channel rather than random.
package nexmark
