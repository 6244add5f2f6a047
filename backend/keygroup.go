package backend

import "github.com/pebblestate/pebblestate/internal/keygroup"

// KeyGroupRange is a half-open range [Start, End) of key groups. The zero
// value is the empty range.
type KeyGroupRange = keygroup.Range

// MaxParallelismLimit is the largest supported max parallelism (1<<15).
const MaxParallelismLimit = keygroup.MaxParallelismLimit

// AssignToKeyGroup returns the key group of a serialized key (the bytes the
// backend's key codec produces for it): MurmurHash3 x86_32 with seed 0 over
// the key bytes, as an unsigned number, modulo maxParallelism. This
// assignment is stable forever.
func AssignToKeyGroup(key []byte, maxParallelism int) (int, error) {
	return keygroup.Assign(key, maxParallelism)
}

// KeyGroupOf encodes k with codec c and returns its key group, the way the
// backend computes it in SetCurrentKey.
func KeyGroupOf[K any](c Codec[K], k K, maxParallelism int) (int, error) {
	b, err := c.Append(nil, k)
	if err != nil {
		return 0, err
	}
	return keygroup.Assign(b, maxParallelism)
}

// KeyGroupRangeForSubtask returns the key groups subtask index (0-based) of
// parallelism subtasks owns. The ranges of all subtasks are contiguous and
// cover [0, maxParallelism).
func KeyGroupRangeForSubtask(maxParallelism, parallelism, index int) (KeyGroupRange, error) {
	return keygroup.RangeForSubtask(maxParallelism, parallelism, index)
}

// SubtaskForKeyGroup returns the index of the subtask that owns key group
// kg among parallelism subtasks.
func SubtaskForKeyGroup(maxParallelism, parallelism, kg int) (int, error) {
	return keygroup.SubtaskForKeyGroup(maxParallelism, parallelism, kg)
}

// ComputeDefaultMaxParallelism returns Flink's default max parallelism for an
// operator of the given parallelism: the next power of two of 1.5x the
// parallelism, at least 128 and at most 32768.
func ComputeDefaultMaxParallelism(parallelism int) (int, error) {
	return keygroup.DefaultMaxParallelism(parallelism)
}
