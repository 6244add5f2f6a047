// Package parallel runs independent jobs on a few goroutines, stopping
// the rest at the first failure: the shape of an upload or a fetch of a
// checkpoint's files.
package parallel
