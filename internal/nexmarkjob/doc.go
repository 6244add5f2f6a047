// Package nexmarkjob is the demo's stream job: Nexmark events published to
// NATS JetStream, consumed by keyed operators whose state lives in
// pebblestate backends, with timers, windows, checkpoints through the
// coordinator, a crash, a restore at another parallelism, and results
// published back to JetStream exactly once, then compared with
// nexmark.Reference.
//
// # Streams
//
// The producer publishes each event to the input stream of every operator
// that reads it, under the key group of that operator's key (the subject
// scheme of package jetstream): bids by auction (q5, q7), bids by bidder
// (q11, the TTL query), people by id and auctions by seller (q8). The
// first stages of q5 and q7 publish per-window partial results to a
// second stream keyed by window, which their second stages read, as Kafka
// Streams repartitions through topics. Every result goes to the results
// stream with a message id made of the query and the result's key, so a
// result published again after a restore is dropped by the server.
//
// # Watermarks
//
// Events are generated in event-time order. Every WatermarkEvery events the
// producer publishes to every key group of every input stream a watermark:
// the time of the last event published, minus 2 ms. A subtask's watermark is
// the smallest of its key groups'; a second stage's is the smallest over
// the first stage's key groups, which each first-stage subtask reports
// after the results it fired. No element is ever late, and a window fires
// only after every element at or before its end (its end included: that
// is the reason for the 2 ms rather than 1) was applied, so the results do
// not depend on the parallelism or on when a subtask crashed: session
// windows that touch merge as they would over the whole stream at once.
// That makes the comparison with the in-memory reference exact.
package nexmarkjob
