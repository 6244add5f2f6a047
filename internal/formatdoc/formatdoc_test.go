package formatdoc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/formatdoc"
)

const doc = "# Title\n\n" +
	"```text example:frame\n" +
	"0000  50 42 53 54  magic \"PBST\"\n" +
	"0004  00 01        version 1\n" +
	"                   (a continued comment)\n" +
	"\n" +
	"0006  <body>       the body\n" +
	"000a  ff\n" +
	"```\n\n" +
	"```json example:body other:words\n" +
	"{\n  \"a\": 1,\n  \"b\": \"<x>\"\n}\n" +
	"```\n\n" +
	"```go\nfmt.Println()\n```\n"

func TestBlockAndDump(t *testing.T) {
	frame, err := formatdoc.Block([]byte(doc), "frame")
	if err != nil {
		t.Fatal(err)
	}
	got, err := formatdoc.Dump(frame, map[string][]byte{"body": []byte("abcd")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("PBST\x00\x01abcd\xff"); !bytes.Equal(got, want) {
		t.Fatalf("dump % x, want % x", got, want)
	}
	body, err := formatdoc.Block([]byte(doc), "body")
	if err != nil {
		t.Fatal(err)
	}
	js, err := formatdoc.JSON(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(js) != `{"a":1,"b":"<x>"}` {
		t.Fatalf("JSON %s", js)
	}
	// Format's output reads back.
	back, err := formatdoc.Dump(formatdoc.Format(got, 0), nil)
	if err != nil || !bytes.Equal(back, got) {
		t.Fatalf("Format/Dump round trip: % x, %v", back, err)
	}
}

func TestBlockErrors(t *testing.T) {
	if _, err := formatdoc.Block([]byte(doc), "missing"); !errors.Is(err, formatdoc.ErrNoExample) {
		t.Errorf("missing example: %v", err)
	}
	twice := doc + "```text example:frame\n0000  00\n```\n"
	if _, err := formatdoc.Block([]byte(twice), "frame"); err == nil || errors.Is(err, formatdoc.ErrNoExample) {
		t.Errorf("two blocks with one name: %v", err)
	}
	if _, err := formatdoc.Block([]byte("```text example:x\n0000  00\n"), "x"); err == nil {
		t.Error("unclosed block accepted")
	}
}

func TestDumpErrors(t *testing.T) {
	for _, bad := range []string{
		"0001  00",           // offset does not match
		"0000  00 0",         // one hex digit
		"0000  zz",           // not hex
		"zz  00",             // offset not hex
		"0000  <missing>",    // nothing fills it
		"0000  00\n0002  00", // skipped a byte
		"0000",               // no bytes
	} {
		if b, err := formatdoc.Dump(bad, nil); err == nil {
			t.Errorf("Dump(%q) = % x, want an error", bad, b)
		}
	}
	if _, err := formatdoc.JSON("{"); err == nil || !strings.Contains(err.Error(), "formatdoc") {
		t.Errorf("JSON of a broken block: %v", err)
	}
}

func TestSections(t *testing.T) {
	secs, err := formatdoc.Sections("\n# key\n0000  00 01\n# value\n0000  ff\n                comment\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 2 || secs[0].Title != "key" || secs[1].Title != "value" {
		t.Fatalf("sections %q", secs)
	}
	for i, want := range [][]byte{{0, 1}, {0xff}} {
		got, err := formatdoc.Dump(secs[i].Text, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("section %d: % x, %v", i, got, err)
		}
	}
	if _, err := formatdoc.Sections("0000  00\n# key\n"); err == nil {
		t.Error("bytes before the first heading accepted")
	}
}
