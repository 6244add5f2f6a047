package backend

import "github.com/pebblestate/pebblestate/internal/keygroup"

// KeyGroupRange is a half-open range [Start, End) of key groups. The zero
// value is the empty range.
type KeyGroupRange = keygroup.Range

// MaxParallelismLimit is the largest supported max parallelism (1<<15).
const MaxParallelismLimit = keygroup.MaxParallelismLimit

// KeyGroupAssigner names how a key is mapped to its key group: one of a
// closed set, Murmur3 (the default) and KafkaMurmur2. A backend records
// its assigner by name when its directory is created and in every
// checkpoint handle, so reopening or restoring with another one is refused
// (ErrIncompatibleBackend) rather than making stored state invisible. The
// names ("murmur3", "kafka-murmur2") are its String form.
//
// An assigner works on the bytes the backend's key codec produces for a
// key. Under KafkaMurmur2 those must be the bytes the Kafka producer's
// serializer wrote as the record key, or keys land elsewhere than their
// partition: backend.String matches Kafka's StringSerializer (UTF-8) and
// backend.Bytes its ByteArraySerializer, while backend.Int64 (sign bit
// flipped, so keys sort) does not match its LongSerializer.
type KeyGroupAssigner = keygroup.Assigner

const (
	// Murmur3 is Flink's key-group assignment, the default: MurmurHash3
	// x86_32 with seed 0 over the key bytes, as an unsigned number, modulo
	// the max parallelism. Golden vectors pin it (testdata/keygroup_vectors.txt).
	Murmur3 = keygroup.AssignerMurmur3
	// KafkaMurmur2 is Kafka's default partitioner for keyed records: the
	// key group is toPositive(murmur2(key bytes)) % max parallelism, with
	// Kafka's murmur2 (seed 0x9747b28c) and toPositive clearing the sign
	// bit. With MaxParallelism set to the topic's number of partitions, a
	// key's key group is its partition, so the subtask consuming
	// partitions [p, q) owns exactly their keys if its backend owns key
	// groups [p, q). Golden vectors computed with an independent Kafka
	// client pin it (testdata/kafka_partition_vectors.txt). Topics of more
	// than MaxParallelismLimit partitions are not supported.
	KafkaMurmur2 = keygroup.AssignerKafkaMurmur2
)

// ParseKeyGroupAssigner returns the assigner of a name: "murmur3" (or the
// empty string) or "kafka-murmur2". Another name wraps ErrInvalidArgument.
func ParseKeyGroupAssigner(name string) (KeyGroupAssigner, error) {
	return keygroup.ParseAssigner(name)
}

// AssignToKeyGroup returns the key group of a serialized key (the bytes the
// backend's key codec produces for it) under Murmur3, the default
// assigner: MurmurHash3 x86_32 with seed 0 over the key bytes, as an
// unsigned number, modulo maxParallelism. This assignment is stable
// forever. A KeyGroupAssigner's Assign method does the same under any
// assigner.
func AssignToKeyGroup(key []byte, maxParallelism int) (int, error) {
	return keygroup.Assign(key, maxParallelism)
}

// KeyGroupOf encodes k with codec c and returns its key group under
// Murmur3, the way a backend with the default assigner computes it in
// SetCurrentKey. KeyGroupOfWith takes the assigner; Backend.KeyGroupOf
// uses the backend's.
func KeyGroupOf[K any](c Codec[K], k K, maxParallelism int) (int, error) {
	return KeyGroupOfWith(Murmur3, c, k, maxParallelism)
}

// KeyGroupOfWith encodes k with codec c and returns its key group under
// assigner a, the way a backend with that assigner computes it in
// SetCurrentKey.
func KeyGroupOfWith[K any](a KeyGroupAssigner, c Codec[K], k K, maxParallelism int) (int, error) {
	b, err := c.Append(nil, k)
	if err != nil {
		return 0, err
	}
	return a.Assign(b, maxParallelism)
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
