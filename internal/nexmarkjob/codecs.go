package nexmarkjob

import (
	"encoding/binary"
	"fmt"

	"github.com/pebblestate/pebblestate/backend"
)

// ints is a codec of fixed-length tuples of int64, as varints: the
// accumulators of the job's aggregates.
type ints struct {
	name string
	n    int
}

func (c ints) Name() string { return c.name }

func (c ints) Append(dst []byte, v []int64) ([]byte, error) {
	if len(v) != c.n {
		return nil, fmt.Errorf("%s: %d numbers, want %d", c.name, len(v), c.n)
	}
	for _, x := range v {
		dst = binary.AppendVarint(dst, x)
	}
	return dst, nil
}

func (c ints) Decode(src []byte) ([]int64, error) {
	v, err := varints(src, c.n)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", backend.ErrCorrupt, c.name, err)
	}
	return v, nil
}

// newSeller is q8's accumulator per person and window: the person's name if
// they registered in the window, and whether they opened an auction in it.
type newSeller struct {
	Registered bool
	Name       string
	Auctioned  bool
}

type newSellerCodec struct{}

func (newSellerCodec) Name() string { return "nexmark-q8-new-seller" }

func (newSellerCodec) Append(dst []byte, v newSeller) ([]byte, error) {
	var flags byte
	if v.Registered {
		flags |= 1
	}
	if v.Auctioned {
		flags |= 2
	}
	dst = append(dst, flags)
	return append(dst, v.Name...), nil
}

func (newSellerCodec) Decode(src []byte) (newSeller, error) {
	if len(src) == 0 || src[0] > 3 {
		return newSeller{}, fmt.Errorf("%w: nexmark-q8-new-seller: bad flags", backend.ErrCorrupt)
	}
	return newSeller{Registered: src[0]&1 != 0, Auctioned: src[0]&2 != 0, Name: string(src[1:])}, nil
}
