package nexmarkjob

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pebblestate/pebblestate/internal/nexmark"
)

// The first byte of every message on the job's streams says what it holds.
const (
	tagEvent     = 'e' // a Nexmark event, nexmark.AppendEvent's form
	tagWatermark = 'w' // the producer's watermark: varint time
	tagPartial   = 'p' // a first stage's window result: varints
	tagUpstream  = 'u' // a first stage's watermark: varints start, end, time
)

var errBadMessage = errors.New("nexmark job: bad message")

func eventMessage(b []byte, e *nexmark.Event) []byte {
	return nexmark.AppendEvent(append(b, tagEvent), e)
}

func watermarkMessage(b []byte, wm int64) []byte {
	return binary.AppendVarint(append(b, tagWatermark), wm)
}

// upstreamMessage is a first-stage subtask's watermark wm for its key
// groups [start, end).
func upstreamMessage(b []byte, start, end int, wm int64) []byte {
	b = append(b, tagUpstream)
	b = binary.AppendVarint(b, int64(start))
	b = binary.AppendVarint(b, int64(end))
	return binary.AppendVarint(b, wm)
}

func partialMessage(b []byte, vs ...int64) []byte {
	b = append(b, tagPartial)
	for _, v := range vs {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// varints reads exactly n varints from b.
func varints(b []byte, n int) ([]int64, error) {
	out := make([]int64, n)
	for i := range out {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: %d of %d numbers", errBadMessage, i, n)
		}
		out[i], b = v, b[k:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadMessage, len(b))
	}
	return out, nil
}
