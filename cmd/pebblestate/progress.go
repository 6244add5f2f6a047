package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress bars on stderr, for work that can take more than a second
// (verify's reads, the demo's events). They are drawn when stderr is a
// terminal, or when -progress asks; -progress=false turns them off. Tests
// write to buffers, which are not terminals, so their output holds no bar
// unless they ask for one.

// progressFlag adds -progress to flags; the returned function says, once
// the flags are parsed, whether bars are drawn on stderr.
func progressFlag(flags *flag.FlagSet, stderr io.Writer) func() bool {
	on := flags.Bool("progress", false, "draw a progress bar on stderr (default: when stderr is a terminal)")
	return func() bool {
		set := false
		flags.Visit(func(f *flag.Flag) { set = set || f.Name == "progress" })
		if set {
			return *on
		}
		return isTerminal(stderr)
	}
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "label [#####.....]  50% detail" on one line,
// redrawn in place at most every progressRedraw. A nil bar draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	last  time.Time
	width int // of the last line drawn, to blank what a shorter one leaves
}

const progressRedraw = 200 * time.Millisecond

// newProgressBar returns a bar on w, or nil if on is false.
func newProgressBar(w io.Writer, label string, on bool) *progressBar {
	if !on {
		return nil
	}
	return &progressBar{w: w, label: label}
}

// update draws done of total, with detail after the percentage, if the
// last drawing is old enough.
func (p *progressBar) update(done, total int64, detail string) {
	if p == nil || time.Since(p.last) < progressRedraw {
		return
	}
	p.draw(done, total, detail)
}

// finish draws done of total and ends the line.
func (p *progressBar) finish(done, total int64, detail string) {
	if p == nil {
		return
	}
	p.draw(done, total, detail)
	fmt.Fprintln(p.w)
	p.width = 0
}

// interrupt blanks the bar's line, for a message; the next update draws
// it again below the message.
func (p *progressBar) interrupt() {
	if p == nil || p.width == 0 {
		return
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width, p.last = 0, time.Time{}
}

func (p *progressBar) draw(done, total int64, detail string) {
	p.last = time.Now()
	const cells = 30
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	n := int(frac * cells)
	line := fmt.Sprintf("%s [%s%s] %3.0f%% %s", p.label, strings.Repeat("#", n), strings.Repeat(".", cells-n), 100*frac, detail)
	pad := max(0, p.width-len(line))
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}
