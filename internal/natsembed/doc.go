// Package natsembed runs a NATS server with JetStream inside the process,
// for the demo and the tests: nothing to install, its file store in a
// directory the caller owns.
package natsembed
