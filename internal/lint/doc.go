// Package lint holds tests that enforce repository-wide rules on the
// library's source: library code reports errors, it does not stop the
// process (no log.Fatal, os.Exit or panic with a message); every package
// has a doc.go; the public API mentions no type a user outside the module
// cannot name (a type of an internal package, unless a public alias
// re-exports it); and the examples, which stand for such users, import no
// internal package.
package lint
