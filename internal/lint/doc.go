// Package lint holds tests that enforce repository-wide rules on the
// library's source: library code reports errors, it does not stop the
// process (no log.Fatal, os.Exit or panic with a message), and every
// package has a doc.go.
package lint
