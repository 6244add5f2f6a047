package nexmarkjob

import (
	"context"
	"encoding/binary"
	"strconv"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/jetstream"
)

// output is what one subtask publishes: partial results to the next
// stage's key-group subjects, watermarks to every one of them, and results
// to the results stream, each with an id that depends only on what it
// says.
type output struct {
	ctx            context.Context
	sink           *jetstream.Sink
	maxParallelism int
	buf            []byte
}

// partial publishes a first stage's window result to the subject of the
// key group of key in s.
func (o *output) partial(s stream, key int64, id string, vs ...int64) error {
	kg, err := backend.KeyGroupOf(backend.Int64, key, o.maxParallelism)
	if err != nil {
		return err
	}
	o.buf = partialMessage(o.buf[:0], vs...)
	return o.sink.Publish(o.ctx, s.subjects.For(kg), id, o.buf)
}

// upstream publishes the watermark wm of the key groups r to every key
// group of s.
func (o *output) upstream(s stream, r backend.KeyGroupRange, wm int64) error {
	o.buf = upstreamMessage(o.buf[:0], r.Start, r.End, wm)
	// Ids are per stream: each subject's copy needs its own.
	id := "u/" + strconv.Itoa(r.Start) + "-" + strconv.Itoa(r.End) + "/" + strconv.FormatInt(wm, 10) + "/"
	for kg := range o.maxParallelism {
		if err := o.sink.Publish(o.ctx, s.subjects.For(kg), id+strconv.Itoa(kg), o.buf); err != nil {
			return err
		}
	}
	return nil
}

// result publishes a query's answer: its numbers, then text.
func (o *output) result(query, id string, text string, vs ...int64) error {
	o.buf = o.buf[:0]
	for _, v := range vs {
		o.buf = binary.AppendVarint(o.buf, v)
	}
	o.buf = append(o.buf, text...)
	return o.sink.Publish(o.ctx, resultSubject(query), query+"/"+id, o.buf)
}

// ids joins numbers into a message id.
func ids(vs ...int64) string {
	b := make([]byte, 0, 8*len(vs))
	for i, v := range vs {
		if i > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(b)
}
