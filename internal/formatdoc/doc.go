// Package formatdoc reads the worked examples out of the repository's
// FORMAT.md files, for the tests that keep those documents honest: a test
// encodes the example's values with the real code and compares the bytes
// with the ones the document shows, so a format cannot change without its
// document.
//
// # Examples
//
// An example is a fenced code block whose info string holds
// "example:<name>", after the language word:
//
//	```text example:metadata-frame
//	0000  50 42 53 54 4d 45 54 41  magic "PBSTMETA"
//	0008  00 00 00 01              version 1
//	000c  <body>                   the JSON body
//	```
//
// Block returns such a block's text. Dump reads an annotated hex dump: each
// line is an offset in hex, two or more spaces, the bytes as two-digit hex
// numbers separated by single spaces (or one <placeholder> standing for
// bytes the test supplies), then optionally two or more spaces and a
// comment. Each offset must be the number of bytes before it. Blank lines
// and lines that start with a space (continued comments) are skipped.
// Markdown renders the dump as it is written. Sections splits a block that
// holds several dumps at lines that start with "# ".
package formatdoc
