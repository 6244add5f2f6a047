package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// DefaultDuplicateWindow is the stream's de-duplication window when
// StreamOptions.DuplicateWindow is zero: JetStream's own default.
const DefaultDuplicateWindow = 2 * time.Minute

// StreamOptions describe a partitioned stream for EnsureStream.
type StreamOptions struct {
	// Name is the stream's name. Required.
	Name string
	// Subjects is the stream's subject scheme; the stream captures
	// Subjects.All(). Required.
	Subjects Subjects
	// DuplicateWindow is how long the server remembers a message id
	// (Nats-Msg-Id) to drop a second message with the same id. A Sink's
	// exactly-once output relies on it: a result published again after a
	// restore is dropped only if its first copy was published less than
	// this long before. Default: DefaultDuplicateWindow.
	DuplicateWindow time.Duration
}

// EnsureStream creates the stream, or checks that an existing stream of
// that name captures the scheme's subjects, and returns it.
func EnsureStream(ctx context.Context, js natsjs.JetStream, o StreamOptions) (natsjs.Stream, error) {
	if o.Name == "" {
		return nil, errors.New("jetstream: stream name is empty")
	}
	if err := o.Subjects.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", o.Name, err)
	}
	dup := o.DuplicateWindow
	if dup == 0 {
		dup = DefaultDuplicateWindow
	}
	s, err := js.Stream(ctx, o.Name)
	switch {
	case err == nil:
		cfg := s.CachedInfo().Config
		for _, subj := range cfg.Subjects {
			if subj == o.Subjects.All() {
				return s, nil
			}
		}
		return nil, fmt.Errorf("jetstream: stream %s exists and does not capture %s (it captures %v)",
			o.Name, o.Subjects.All(), cfg.Subjects)
	case errors.Is(err, natsjs.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, natsjs.StreamConfig{
			Name:       o.Name,
			Subjects:   []string{o.Subjects.All()},
			Storage:    natsjs.FileStorage,
			Duplicates: dup,
		})
		if err != nil {
			return nil, fmt.Errorf("jetstream: create stream %s: %w", o.Name, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("jetstream: stream %s: %w", o.Name, err)
	}
}
