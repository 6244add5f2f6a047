package formatdoc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoExample is returned by Block when no block carries the name.
var ErrNoExample = errors.New("formatdoc: no such example")

// Block returns the text of the fenced block of doc whose info string
// holds "example:"+name, without its fences. It is an error if none or
// more than one does, or if the block is not closed.
func Block(doc []byte, name string) (string, error) {
	lines := strings.Split(string(doc), "\n")
	tag := "example:" + name
	var found []string
	for i := 0; i < len(lines); i++ {
		fence, info, ok := openFence(lines[i])
		if !ok {
			continue
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimRight(lines[i], " ") == fence {
				closed = true
				break
			}
			body = append(body, lines[i])
		}
		if !closed {
			return "", fmt.Errorf("formatdoc: unclosed code block (info %q)", info)
		}
		for _, w := range strings.Fields(info) {
			if w == tag {
				found = append(found, strings.Join(body, "\n"))
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: %s", ErrNoExample, tag)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("formatdoc: %d blocks are marked %s", len(found), tag)
}

// openFence reports whether line opens a fenced block, and returns the
// fence and the info string.
func openFence(line string) (fence, info string, ok bool) {
	n := len(line) - len(strings.TrimLeft(line, "`"))
	if n < 3 {
		return "", "", false
	}
	return line[:n], strings.TrimSpace(line[n:]), true
}

// Dump reads an annotated hex dump (see the package documentation).
// fill supplies the bytes of each <placeholder>, by the name between the
// angle brackets.
func Dump(block string, fill map[string][]byte) ([]byte, error) {
	var out []byte
	for n, line := range strings.Split(block, "\n") {
		if strings.TrimSpace(line) == "" || line[0] == ' ' {
			continue
		}
		off, rest, _ := strings.Cut(line, "  ")
		at, err := strconv.ParseUint(off, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("formatdoc: line %d: offset %q: %w", n+1, off, err)
		}
		if at != uint64(len(out)) {
			return nil, fmt.Errorf("formatdoc: line %d: offset %#x, but %#x bytes come before it", n+1, at, len(out))
		}
		data, _, _ := strings.Cut(strings.TrimLeft(rest, " "), "  ")
		if name, ok := strings.CutPrefix(data, "<"); ok && strings.HasSuffix(name, ">") {
			b, ok := fill[strings.TrimSuffix(name, ">")]
			if !ok {
				return nil, fmt.Errorf("formatdoc: line %d: nothing fills %s", n+1, data)
			}
			out = append(out, b...)
			continue
		}
		if data == "" {
			return nil, fmt.Errorf("formatdoc: line %d has no bytes", n+1)
		}
		for _, tok := range strings.Split(data, " ") {
			if len(tok) != 2 {
				return nil, fmt.Errorf("formatdoc: line %d: %q is not a two-digit hex byte", n+1, tok)
			}
			b, err := hex.DecodeString(tok)
			if err != nil {
				return nil, fmt.Errorf("formatdoc: line %d: %w", n+1, err)
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

// Section is a titled part of an example block.
type Section struct {
	Title string // the heading line, without its "# "
	Text  string // the lines up to the next heading
}

// Sections splits an example block into sections at lines that start with
// "# ", for an example that shows several dumps, each with offsets from
// zero. Only blank lines may come before the first heading.
func Sections(block string) ([]Section, error) {
	var out []Section
	for n, line := range strings.Split(block, "\n") {
		if title, ok := strings.CutPrefix(line, "# "); ok {
			out = append(out, Section{Title: strings.TrimSpace(title)})
			continue
		}
		if len(out) == 0 {
			if strings.TrimSpace(line) != "" {
				return nil, fmt.Errorf("formatdoc: line %d comes before the first heading", n+1)
			}
			continue
		}
		out[len(out)-1].Text += line + "\n"
	}
	return out, nil
}

// JSON returns the compact form of a JSON block, as encoding/json's
// Marshal writes it: documents show JSON indented, encoders write it
// compact, and compaction keeps field order and escapes.
func JSON(block string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(block)); err != nil {
		return nil, fmt.Errorf("formatdoc: %w", err)
	}
	return buf.Bytes(), nil
}

// Format returns b as dump lines of up to 16 bytes each, the first at
// offset off, for a test to print when a document is out of date. Dump
// reads its output back when off is 0.
func Format(b []byte, off int) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		fmt.Fprintf(&sb, "%04x ", off+i)
		for _, c := range b[i:end] {
			fmt.Fprintf(&sb, " %02x", c)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
