// Package apitest holds tests written as a program outside this module
// would write them: they import only the public packages, never an
// internal one (internal/lint checks that), and name, construct and read
// every exported field of the types a checkpoint and a restore hand out.
// If one of those types mentioned a type of an internal package, these
// tests could not be written, and neither could the user's code.
//
// The package has no code of its own.
package apitest
