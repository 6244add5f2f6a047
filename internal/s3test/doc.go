// Package s3test runs a real S3 server for tests: versitygw, pinned in
// tools/versitygw/go.mod, built once per test binary (the Go build cache
// keeps it between runs) and started with its POSIX backend over a
// temporary directory on 127.0.0.1, with fixed test credentials. Tests
// that use it never skip: a server that cannot be built or started fails
// them.
package s3test
