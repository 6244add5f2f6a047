package snapshot

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
)

// MetadataName is the name of a checkpoint's metadata file in its directory.
const MetadataName = "_metadata"

// MetadataVersion is the newest version of the metadata this package
// writes and reads. A checkpoint is written as version 1 unless it holds
// operator state (MetadataVersionOperatorState).
const MetadataVersion = 2

// metadataMagic starts every metadata file.
var metadataMagic = [8]byte{'P', 'B', 'S', 'T', 'M', 'E', 'T', 'A'}

// Castagnoli is the CRC-32C table every checksum of this module uses.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kinds of handles.
const (
	KindFull        = "full"
	KindIncremental = "incremental"
)

// Checkpoint is the content of a checkpoint's _metadata.
type Checkpoint struct {
	ID                int64    `json:"id"`
	CreatedUnixMillis int64    `json:"created_unix_millis"`
	Handles           []Handle `json:"handles"`

	// OperatorStates locate the operator state of each operator subtask
	// that has some (see OperatorStateRef); a checkpoint with any is
	// metadata version 2.
	OperatorStates []OperatorStateRef `json:"operator_states,omitempty"`
}

// Handle describes what one backend instance wrote for a checkpoint.
type Handle struct {
	// Operator names the operator the instance belongs to.
	Operator string `json:"operator"`
	// InstanceID is the backend instance's id.
	InstanceID string `json:"instance_id"`
	// CheckpointID is the checkpoint the handle belongs to.
	CheckpointID int64 `json:"checkpoint_id"`
	// Kind is KindFull or KindIncremental.
	Kind string `json:"kind"`
	// MaxParallelism is the number of key groups of the operator.
	MaxParallelism int `json:"max_parallelism"`
	// KeyGroupStart and KeyGroupEnd bound the instance's key groups [start, end).
	KeyGroupStart int `json:"key_group_start"`
	KeyGroupEnd   int `json:"key_group_end"`
	// KeyCodec names the instance's key codec.
	KeyCodec string `json:"key_codec"`
	// States describe the instance's states, with the ids the data uses.
	States []State `json:"states"`
	// Files are the files the handle needs, by storage name: a full
	// snapshot's data file, or an incremental snapshot's private files
	// (MANIFEST, OPTIONS, ...), which live in the checkpoint's directory.
	Files []FileRef `json:"files"`
	// Shared are the SST files of an incremental snapshot, in shared/; a
	// later checkpoint may reference the same ones.
	Shared []SharedFile `json:"shared,omitempty"`
	// Compression names the block compression of a full snapshot.
	Compression string `json:"compression,omitempty"`
	// Blocks locate each key group's data in a full snapshot's data file;
	// key groups without data have no block.
	Blocks []Block `json:"blocks,omitempty"`
	// StateSize is the total size of the files the handle uses;
	// CheckpointedSize is the part written for this checkpoint.
	StateSize        int64 `json:"state_size"`
	CheckpointedSize int64 `json:"checkpointed_size"`
}

// FileRef names a file in storage with its size and CRC-32C.
type FileRef struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// SharedFile is an SST of an incremental snapshot: the file in storage and
// the name it has in the instance's database directory.
type SharedFile struct {
	FileRef
	LocalName string `json:"local_name"`
}

// Block locates one key group's data in a full snapshot's data file.
type Block struct {
	KeyGroup int    `json:"key_group"`
	Offset   int64  `json:"offset"`
	Length   int64  `json:"length"`
	CRC32C   uint32 `json:"crc32c"`
	Entries  int64  `json:"entries"`
}

// Validate checks a handle's internal consistency: sane key groups, blocks
// inside the range and in order, complete state records (see
// State.Validate) with unique names and ids, and safe file names: every
// file in its own checkpoint's directory (Dir(CheckpointID)), every shared
// file in shared/, each a name CheckName accepts; local names and the
// instance id plain file names (no separator, not "." or "..", at most
// MaxNameElemLen bytes), no two files sharing a local name. Errors name
// the field and quote the value.
func (h *Handle) Validate() error {
	switch {
	case h.CheckpointID < 0:
		return fmt.Errorf("handle of %s: checkpoint id %d is negative", h.InstanceID, h.CheckpointID)
	case h.MaxParallelism < 1 || h.MaxParallelism > 1<<15:
		return fmt.Errorf("handle of %s: max parallelism %d out of range", h.InstanceID, h.MaxParallelism)
	case h.KeyGroupStart < 0 || h.KeyGroupEnd > h.MaxParallelism || h.KeyGroupEnd <= h.KeyGroupStart:
		return fmt.Errorf("handle of %s: key groups [%d, %d) invalid for max parallelism %d",
			h.InstanceID, h.KeyGroupStart, h.KeyGroupEnd, h.MaxParallelism)
	case h.Kind != KindFull && h.Kind != KindIncremental:
		return fmt.Errorf("handle of %s: unknown kind %q", h.InstanceID, h.Kind)
	}
	prev := -1
	for _, b := range h.Blocks {
		if b.KeyGroup < h.KeyGroupStart || b.KeyGroup >= h.KeyGroupEnd {
			return fmt.Errorf("handle of %s: key group %d outside the handle's range [%d, %d)",
				h.InstanceID, b.KeyGroup, h.KeyGroupStart, h.KeyGroupEnd)
		}
		if b.KeyGroup <= prev || b.Offset < 0 || b.Length < 0 {
			return fmt.Errorf("handle of %s: block of key group %d out of order or negative", h.InstanceID, b.KeyGroup)
		}
		prev = b.KeyGroup
	}
	ids := make(map[uint16]bool, len(h.States))
	names := make(map[string]bool, len(h.States))
	for i := range h.States {
		s := &h.States[i]
		if err := s.Validate(); err != nil {
			return fmt.Errorf("handle of %s: %w", h.InstanceID, err)
		}
		if ids[s.ID] {
			return fmt.Errorf("handle of %s: duplicate state id %d", h.InstanceID, s.ID)
		}
		if names[s.Name] {
			return fmt.Errorf("handle of %s: duplicate state name %q", h.InstanceID, s.Name)
		}
		ids[s.ID], names[s.Name] = true, true
	}
	if err := h.validateNames(); err != nil {
		return fmt.Errorf("handle of %s: %w", h.InstanceID, err)
	}
	return nil
}

// EncodeMetadata returns the stored form of a checkpoint's metadata:
//
//	magic "PBSTMETA" | version uint32 | body length uint64 | JSON body | CRC-32C uint32
//
// integers big-endian, the checksum over everything before it. The
// version is 1, or MetadataVersionOperatorState if the checkpoint holds
// operator state.
func EncodeMetadata(cp *Checkpoint) ([]byte, error) {
	body, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encode metadata of checkpoint %d: %w", cp.ID, err)
	}
	out := make([]byte, 0, len(body)+24)
	out = append(out, metadataMagic[:]...)
	version := uint32(1)
	if len(cp.OperatorStates) > 0 {
		version = MetadataVersionOperatorState
	}
	out = binary.BigEndian.AppendUint32(out, version)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, Castagnoli)), nil
}

// DecodeMetadata verifies and decodes a metadata file's bytes; name is used
// in errors. Every error wraps ErrCorrupt; an unknown version wraps
// ErrUnknownVersion too. What decodes satisfies Checkpoint.Validate: its
// file names are safe to use.
func DecodeMetadata(name string, b []byte) (*Checkpoint, error) {
	cp, err := decodeFrame(name, b)
	if err != nil {
		return nil, err
	}
	if err := cp.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	return cp, nil
}

// decodeFrame verifies a metadata file's frame and decodes its body,
// without checking the checkpoint's invariants.
func decodeFrame(name string, b []byte) (*Checkpoint, error) {
	const head = 8 + 4 + 8
	if len(b) < head+4 {
		return nil, fmt.Errorf("%w: %s: %d bytes is too short for metadata", ErrCorrupt, name, len(b))
	}
	if !bytes.Equal(b[:8], metadataMagic[:]) {
		return nil, fmt.Errorf("%w: %s: bad magic %q", ErrCorrupt, name, b[:8])
	}
	if v := binary.BigEndian.Uint32(b[8:]); v < 1 || v > MetadataVersion {
		return nil, fmt.Errorf("%w: %s: %w %d (this build reads 1 to %d)", ErrCorrupt, name, ErrUnknownVersion, v, MetadataVersion)
	}
	n := binary.BigEndian.Uint64(b[12:])
	if n != uint64(len(b)-head-4) {
		return nil, fmt.Errorf("%w: %s: body of %d bytes declared, %d present (truncated?)", ErrCorrupt, name, n, len(b)-head-4)
	}
	want := binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(b[:len(b)-4], Castagnoli); got != want {
		return nil, fmt.Errorf("%w: %s: checksum %08x, expected %08x", ErrCorrupt, name, got, want)
	}
	cp := new(Checkpoint)
	if err := json.Unmarshal(b[head:len(b)-4], cp); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	return cp, nil
}
