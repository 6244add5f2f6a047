package snapshot

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Bounds on storage names, in bytes.
const (
	// MaxNameLen bounds a whole storage name.
	MaxNameLen = 1024
	// MaxNameElemLen bounds one slash-separated element of a name, and a
	// local file name.
	MaxNameElemLen = 255
)

// nameError reports an unsafe name. It matches fs.ErrInvalid.
type nameError struct {
	field string // what the name is, such as "shared[2].local_name"; may be empty
	name  string
	why   string
}

func (e *nameError) Error() string {
	if e.field == "" {
		return fmt.Sprintf("unsafe name %q: %s", e.name, e.why)
	}
	return fmt.Sprintf("%s %q: %s", e.field, e.name, e.why)
}

// Is makes an unsafe name match fs.ErrInvalid.
func (e *nameError) Is(target error) bool { return target == fs.ErrInvalid }

// CheckName reports whether name is a safe storage name: relative,
// slash-separated and clean (path.Clean leaves it unchanged), with no "."
// or ".." element, no backslash and no NUL, at most MaxNameElemLen bytes
// per element and MaxNameLen in all. Such a name cannot leave the root of
// the storage it is resolved in. Local refuses every other name, and so
// should every Storage; the error matches fs.ErrInvalid.
func CheckName(name string) error {
	if why := nameProblem(name); why != "" {
		return &nameError{name: name, why: why}
	}
	return nil
}

func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("%d bytes long, more than %d", len(name), MaxNameLen)
	case strings.ContainsAny(name, "\\\x00"):
		return "holds a backslash or NUL"
	case path.IsAbs(name):
		return "absolute"
	case path.Clean(name) != name:
		return "not a clean path"
	}
	for e := range strings.SplitSeq(name, "/") {
		switch {
		case e == "." || e == "..":
			return fmt.Sprintf("has a %q element", e)
		case len(e) > MaxNameElemLen:
			return fmt.Sprintf("has an element of %d bytes, more than %d", len(e), MaxNameElemLen)
		}
	}
	return ""
}

// baseProblem says what is wrong with a plain file name (a local name in
// a database directory), or returns "".
func baseProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case strings.ContainsAny(name, "/\\\x00"):
		return "not a plain file name"
	case name == "." || name == "..":
		return "not a file name"
	case len(name) > MaxNameElemLen:
		return fmt.Sprintf("%d bytes long, more than %d", len(name), MaxNameElemLen)
	}
	return ""
}

// checkRef checks that a name from metadata is safe and lies under dir
// (such as "chk-7/" or "shared/").
func checkRef(field, name, dir string) error {
	if why := nameProblem(name); why != "" {
		return &nameError{field: field, name: name, why: why}
	}
	if !strings.HasPrefix(name, dir) {
		return &nameError{field: field, name: name, why: "not under " + dir}
	}
	return nil
}

// validateNames checks every name of a handle that becomes a path: its
// files must lie in its own checkpoint's directory, its shared files in
// shared/, and its local names and instance id must be plain file names,
// no two files taking one local name.
func (h *Handle) validateNames() error {
	if h.InstanceID != "" {
		if why := baseProblem(h.InstanceID); why != "" {
			return &nameError{field: "instance_id", name: h.InstanceID, why: why}
		}
	}
	local := make(map[string]string, len(h.Files)+len(h.Shared))
	claim := func(field, name string) error {
		if other, ok := local[name]; ok {
			return &nameError{field: field, name: name, why: "local name already taken by " + other}
		}
		local[name] = field
		return nil
	}
	own := Dir(h.CheckpointID) + "/"
	for i, f := range h.Files {
		field := fmt.Sprintf("files[%d].name", i)
		if err := checkRef(field, f.Name, own); err != nil {
			return err
		}
		if err := claim(field, path.Base(f.Name)); err != nil {
			return err
		}
	}
	for i, f := range h.Shared {
		field := fmt.Sprintf("shared[%d].name", i)
		if err := checkRef(field, f.Name, SharedDir+"/"); err != nil {
			return err
		}
		field = fmt.Sprintf("shared[%d].local_name", i)
		if why := baseProblem(f.LocalName); why != "" {
			return &nameError{field: field, name: f.LocalName, why: why}
		}
		if err := claim(field, f.LocalName); err != nil {
			return err
		}
	}
	return nil
}

// SharedName returns the storage name of an SST uploaded for checkpoint
// creator by writer writerID, whose file in the writer's database is local
// (such as "000123.sst"). The writer id is drawn afresh each time a
// backend is opened or restored, so the name is unique to one writer: two
// processes restored from one checkpoint, whose databases share their file
// numbers (and perhaps their instance id), never write the same name. The
// creator's id lets garbage collection tell old debris from uploads of
// checkpoints still in flight.
func SharedName(writerID string, creator int64, local string) string {
	return fmt.Sprintf("%s/%s-c%d-%s", SharedDir, writerID, creator, local)
}

var sharedName = regexp.MustCompile(`^shared/[0-9a-f]+-c(\d+)-[^/]+$`)

// SharedCreator returns the id of the checkpoint that uploaded the shared
// file name, if name is one SharedName makes; other files in shared/ are
// not named by this format, and retention deletes none of them.
func SharedCreator(name string) (int64, bool) {
	m := sharedName.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	return id, err == nil
}
