// Package childbin builds, once per test process, the binaries that
// tests start as child processes when the test binary itself has the
// race detector: a race-enabled child starts slowly and runs about twice
// as slowly, and the crash and process tests that start many of them
// check what they leave on disk, which the race detector does not see
// across processes. The parent keeps the race detector.
package childbin
