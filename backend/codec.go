package backend

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
)

// A Codec turns values of type T into bytes and back. Keys, namespaces,
// values, list elements and map keys and values all go through codecs.
//
// Encodings are stored, and a key's encoding decides its key group, so a
// codec's output for a given value must never change once data is written.
// Name identifies the encoding and is recorded in each state's metadata;
// registering a state again with a codec of another name is an error.
//
// A codec whose encodings all have the same length should also implement
// FixedSizer: keys and namespaces then need no length prefix, and the
// built-in fixed-size codecs make value reads and writes allocation-free.
type Codec[T any] interface {
	// Name identifies the encoding, e.g. "int64". It must not be empty.
	Name() string
	// Append appends the encoding of v to dst and returns the extended
	// slice. It must not retain dst.
	Append(dst []byte, v T) ([]byte, error)
	// Decode decodes a value from src, which holds exactly one encoding.
	// src is valid only during the call: a codec that keeps bytes must copy
	// them. A src that is not a valid encoding must produce an error.
	Decode(src []byte) (T, error)
}

// FixedSizer is implemented by codecs whose every encoding is FixedSize
// bytes long. The backend checks the claim on every encode.
type FixedSizer interface {
	FixedSize() int
}

// fixedSize returns c's fixed size, or -1 if it is variable.
func fixedSize[T any](c Codec[T]) int {
	if f, ok := c.(FixedSizer); ok && f.FixedSize() >= 0 {
		return f.FixedSize()
	}
	return -1
}

func sizeError(name string, want, got int) error {
	return fmt.Errorf("%w: %s codec needs %d bytes, got %d", ErrCorrupt, name, want, got)
}

// The built-in codecs. Integers and floats are big-endian with the sign
// handled so that byte order equals numeric order: map entries with these
// key codecs iterate in ascending numeric order.
var (
	Int64   Codec[int64]   = int64Codec{}
	Int32   Codec[int32]   = int32Codec{}
	Uint64  Codec[uint64]  = uint64Codec{}
	Float64 Codec[float64] = float64Codec{}
	Bool    Codec[bool]    = boolCodec{}
	String  Codec[string]  = stringCodec{}
	Bytes   Codec[[]byte]  = bytesCodec{}
)

type int64Codec struct{}

func (int64Codec) Name() string   { return "int64" }
func (int64Codec) FixedSize() int { return 8 }
func (int64Codec) Append(dst []byte, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63)), nil
}
func (int64Codec) Decode(src []byte) (int64, error) {
	if len(src) != 8 {
		return 0, sizeError("int64", 8, len(src))
	}
	return int64(binary.BigEndian.Uint64(src) ^ (1 << 63)), nil
}

type int32Codec struct{}

func (int32Codec) Name() string   { return "int32" }
func (int32Codec) FixedSize() int { return 4 }
func (int32Codec) Append(dst []byte, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)^(1<<31)), nil
}
func (int32Codec) Decode(src []byte) (int32, error) {
	if len(src) != 4 {
		return 0, sizeError("int32", 4, len(src))
	}
	return int32(binary.BigEndian.Uint32(src) ^ (1 << 31)), nil
}

type uint64Codec struct{}

func (uint64Codec) Name() string   { return "uint64" }
func (uint64Codec) FixedSize() int { return 8 }
func (uint64Codec) Append(dst []byte, v uint64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, v), nil
}
func (uint64Codec) Decode(src []byte) (uint64, error) {
	if len(src) != 8 {
		return 0, sizeError("uint64", 8, len(src))
	}
	return binary.BigEndian.Uint64(src), nil
}

// float64Codec flips all bits of negative numbers and the sign bit of the
// others, which makes byte order match numeric order. NaN payloads survive.
type float64Codec struct{}

func (float64Codec) Name() string   { return "float64" }
func (float64Codec) FixedSize() int { return 8 }
func (float64Codec) Append(dst []byte, v float64) ([]byte, error) {
	u := math.Float64bits(v)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, u), nil
}
func (float64Codec) Decode(src []byte) (float64, error) {
	if len(src) != 8 {
		return 0, sizeError("float64", 8, len(src))
	}
	u := binary.BigEndian.Uint64(src)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u), nil
}

type boolCodec struct{}

func (boolCodec) Name() string   { return "bool" }
func (boolCodec) FixedSize() int { return 1 }
func (boolCodec) Append(dst []byte, v bool) ([]byte, error) {
	if v {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}
func (boolCodec) Decode(src []byte) (bool, error) {
	if len(src) != 1 || src[0] > 1 {
		return false, fmt.Errorf("%w: bool codec needs one byte 0 or 1, got %x", ErrCorrupt, src)
	}
	return src[0] == 1, nil
}

type stringCodec struct{}

func (stringCodec) Name() string { return "string" }
func (stringCodec) Append(dst []byte, v string) ([]byte, error) {
	return append(dst, v...), nil
}
func (stringCodec) Decode(src []byte) (string, error) { return string(src), nil }

type bytesCodec struct{}

func (bytesCodec) Name() string { return "bytes" }
func (bytesCodec) Append(dst []byte, v []byte) ([]byte, error) {
	return append(dst, v...), nil
}
func (bytesCodec) Decode(src []byte) ([]byte, error) {
	return append([]byte{}, src...), nil
}

// JSON returns a codec that stores T as JSON with encoding/json. Its name
// includes T's Go type, so a state cannot be reopened with another struct.
// JSON encodings of maps and structs are not meant for keys: prefer a
// fixed-size or string codec there.
func JSON[T any]() Codec[T] {
	return jsonCodec[T]{name: "json:" + reflect.TypeFor[T]().String()}
}

type jsonCodec[T any] struct{ name string }

func (c jsonCodec[T]) Name() string { return c.name }
func (c jsonCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("backend: %s codec: %w", c.name, err)
	}
	return append(dst, b...), nil
}
func (c jsonCodec[T]) Decode(src []byte) (T, error) {
	var v T
	if err := json.Unmarshal(src, &v); err != nil {
		return v, fmt.Errorf("%w: %s codec: %v", ErrCorrupt, c.name, err)
	}
	return v, nil
}

// VoidNamespace is the namespace of state that is not scoped to a window.
type VoidNamespace struct{}

// Void is the codec of VoidNamespace. It encodes to zero bytes, so states in
// the void namespace pay nothing for it.
var Void Codec[VoidNamespace] = voidCodec{}

type voidCodec struct{}

func (voidCodec) Name() string   { return "void" }
func (voidCodec) FixedSize() int { return 0 }
func (voidCodec) Append(dst []byte, _ VoidNamespace) ([]byte, error) {
	return dst, nil
}
func (voidCodec) Decode(src []byte) (VoidNamespace, error) {
	if len(src) != 0 {
		return VoidNamespace{}, sizeError("void", 0, len(src))
	}
	return VoidNamespace{}, nil
}
