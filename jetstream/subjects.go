package jetstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pebblestate/pebblestate/backend"
)

// Subjects is the subject scheme of one partitioned stream: key group kg's
// messages are published to "<Prefix>.<kg>", kg in decimal without
// leading zeros, and the stream captures "<Prefix>.*". A producer computes
// the key group of each message's key with the consuming backend's
// assigner (backend.KeyGroupOf with the backend's key codec and max
// parallelism); a subtask consumes the subjects of its key-group range.
//
// Because the key group, not the subtask, names the subject, the scheme
// does not change when the consumer's parallelism does: a subtask restored
// at another parallelism consumes another set of the same subjects.
type Subjects struct {
	// Prefix is one or more subject tokens separated by dots, without
	// wildcards or white space, e.g. "nexmark.events".
	Prefix string
}

// Validate reports whether the prefix is a valid literal subject.
func (s Subjects) Validate() error {
	if s.Prefix == "" {
		return errors.New("subject prefix is empty")
	}
	for _, tok := range strings.Split(s.Prefix, ".") {
		if tok == "" {
			return fmt.Errorf("subject prefix %q has an empty token", s.Prefix)
		}
		if strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("subject prefix %q holds a wildcard or white space", s.Prefix)
		}
	}
	return nil
}

// For returns the subject of key group kg.
func (s Subjects) For(kg int) string { return s.Prefix + "." + strconv.Itoa(kg) }

// All returns the wildcard subject the stream captures.
func (s Subjects) All() string { return s.Prefix + ".*" }

// Filter returns the subjects of the key groups in r, in key-group order.
func (s Subjects) Filter(r backend.KeyGroupRange) []string {
	out := make([]string, 0, r.Len())
	for kg := r.Start; kg < r.End; kg++ {
		out = append(out, s.For(kg))
	}
	return out
}

// KeyGroup returns the key group a subject of the scheme names.
func (s Subjects) KeyGroup(subject string) (int, error) {
	rest, ok := strings.CutPrefix(subject, s.Prefix+".")
	if !ok {
		return 0, fmt.Errorf("subject %q is not under prefix %q", subject, s.Prefix)
	}
	kg, err := strconv.Atoi(rest)
	if err != nil || kg < 0 || strconv.Itoa(kg) != rest {
		return 0, fmt.Errorf("subject %q does not end in a key group", subject)
	}
	return kg, nil
}
