package keygroup

import "fmt"

// Assigner names how a serialized key is mapped to its key group. It is a
// closed set: the backend records the assigner by name, beside its data and
// in every checkpoint handle, so that reopening or restoring with another
// one is refused instead of making stored state invisible. The zero value
// is AssignerMurmur3.
type Assigner uint8

// The assigners. Their names are stored; never rename them.
const (
	// AssignerMurmur3 is Flink's assignment: MurmurHash3 x86_32 (seed 0) of the
	// key bytes, as an unsigned number, modulo the max parallelism. Name
	// "murmur3". The default.
	AssignerMurmur3 Assigner = iota
	// AssignerKafkaMurmur2 is Kafka's default partitioner for keyed records: the
	// key group of a key is the partition a Kafka producer sends it to,
	// toPositive(murmur2(key bytes)) % max parallelism, with the max
	// parallelism set to the topic's number of partitions. Name
	// "kafka-murmur2".
	AssignerKafkaMurmur2
)

// assignerNames are the stored names, by assigner.
var assignerNames = [...]string{AssignerMurmur3: "murmur3", AssignerKafkaMurmur2: "kafka-murmur2"}

// Valid reports whether a is one of the assigners above.
func (a Assigner) Valid() bool { return int(a) < len(assignerNames) }

// String returns the assigner's name ("murmur3", "kafka-murmur2"), or
// Assigner(n) for a value that is none of them.
func (a Assigner) String() string {
	if !a.Valid() {
		return fmt.Sprintf("Assigner(%d)", uint8(a))
	}
	return assignerNames[a]
}

// Recorded returns the name stored in records and checkpoint handles: the
// empty string for AssignerMurmur3, whose records predate the field (a
// missing name means murmur3), and String() for the others.
func (a Assigner) Recorded() string {
	if a == AssignerMurmur3 {
		return ""
	}
	return a.String()
}

// ParseAssigner returns the assigner of a stored name; the empty string is
// AssignerMurmur3. An unknown name wraps ErrInvalidArgument.
func ParseAssigner(name string) (Assigner, error) {
	if name == "" {
		return AssignerMurmur3, nil
	}
	for a, n := range assignerNames {
		if n == name {
			return Assigner(a), nil
		}
	}
	return 0, fmt.Errorf("%w: key-group assigner %q is unknown to this build", ErrInvalidArgument, name)
}

// DisplayName returns the assigner name a stored name stands for, for
// messages: "murmur3" for the empty string, the name itself otherwise.
func DisplayName(recorded string) string {
	if recorded == "" {
		return AssignerMurmur3.String()
	}
	return recorded
}

// Assign returns the key group of a serialized key under a, for a max
// parallelism in [1, MaxParallelismLimit].
func (a Assigner) Assign(key []byte, maxParallelism int) (int, error) {
	if err := checkMaxParallelism(maxParallelism); err != nil {
		return 0, err
	}
	if !a.Valid() {
		return 0, fmt.Errorf("%w: key-group assigner %v", ErrInvalidArgument, a)
	}
	return a.AssignUnchecked(key, maxParallelism), nil
}

// AssignUnchecked is Assign for a valid assigner and a max parallelism the
// caller has already checked; it is the hot-path form. An invalid
// assigner is taken as AssignerMurmur3.
func (a Assigner) AssignUnchecked(key []byte, maxParallelism int) int {
	if a == AssignerKafkaMurmur2 {
		return KafkaPartition(key, maxParallelism)
	}
	return AssignUnchecked(key, maxParallelism)
}
