package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Ensure that the quickstart runs and prints what the README's tour says it
// does.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	const want = `subtask 0: frank: 1 clicks on [/home], last /home, by hour: 0:1
subtask 0: judy: 1 clicks on [/help], last /help, by hour: 1:1
subtask 0: frank clicked in window [10s, 20s)
subtask 1: alice: 3 clicks on [/home /cart /pay], last /pay, by hour: 0:2 1:1
subtask 1: bob: 1 clicks on [/home], last /home, by hour: 0:1
subtask 1: alice clicked in window [10s, 20s)
checkpoint 1: 2 subtasks
two hours later: every last-page entry has expired
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

// Ensure that every Go block of the README is a verbatim excerpt of this
// program (up to indentation), so the README's code compiles and runs.
func TestREADMEShowsThisCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 3 {
		t.Fatalf("README has %d Go blocks, want the tour's", len(blocks))
	}
	for _, b := range blocks {
		if !containsIndented(string(src), b[1]) {
			t.Errorf("README block is not in examples/quickstart/main.go; copy it from there:\n%s", b[1])
		}
	}
}

// containsIndented reports whether src holds block with every non-empty
// line indented by the same number of tabs (0 to 3).
func containsIndented(src, block string) bool {
	for depth := range 4 {
		lines := strings.Split(block, "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = strings.Repeat("\t", depth) + l
			}
		}
		if strings.Contains(src, strings.Join(lines, "\n")) {
			return true
		}
	}
	return false
}
