package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// table returns a writer that aligns tab-separated columns on stdout; call
// Flush when done.
func (a *app) table() *tabwriter.Writer { return newTable(a.stdout) }

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// row writes cells as one table line.
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

// fmtSeconds writes a lifetime compactly: 7d, 1d12h, 90s; the all-ones
// value of DHCPv6 is "infinite".
func fmtSeconds(s uint32) string {
	if s == math.MaxUint32 {
		return "infinite"
	}
	return fmtDuration(int64(s))
}

// fmtDuration writes a number of seconds as days, hours, minutes and
// seconds, leaving out zero units.
func fmtDuration(s int64) string {
	if s <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		name string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if s >= u.n {
			fmt.Fprintf(&b, "%d%s", s/u.n, u.name)
			s %= u.n
		}
	}
	return b.String()
}

// fmtTime writes a time as RFC 3339, or "-" if unset.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// orDash returns s, or "-" if it is empty, so table columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tableBlock is how many lines a streamTable holds to size its columns.
const tableBlock = 1000

// streamTable lays out lines of cells as a.table() does: every cell but a
// line's last is padded with spaces to two more than the widest cell of its
// column (in runes). A tabwriter must hold every line to know the widths;
// a streamTable holds only the first tableBlock lines and keeps their
// widths for the lines after, where a cell wider than its column widens it
// from that line on. Up to tableBlock lines the output is the tabwriter's,
// for cells without tabs, newlines and tabwriter's escape byte 0xff.
type streamTable struct {
	w      *bufio.Writer
	held   [][]string
	widths []int // nil while holding
	rows   int
	err    error
}

func newStreamTable(w *bufio.Writer) *streamTable { return &streamTable{w: w} }

// Rows is the number of lines given to Row.
func (t *streamTable) Rows() int { return t.rows }

// Row adds a line. The error is the first of the underlying writer.
func (t *streamTable) Row(cells ...string) error {
	if t.err != nil {
		return t.err
	}
	t.rows++
	if t.widths == nil {
		t.held = append(t.held, cells)
		if len(t.held) < tableBlock {
			return nil
		}
		return t.release()
	}
	return t.line(cells)
}

// Flush writes the lines held; the table keeps going with their widths.
// It does not flush the underlying writer.
func (t *streamTable) Flush() error {
	if t.err == nil && t.widths == nil {
		return t.release()
	}
	return t.err
}

// release sizes the columns by the lines held and writes them.
func (t *streamTable) release() error {
	t.widths = []int{}
	for _, cells := range t.held {
		t.grow(cells)
	}
	for _, cells := range t.held {
		if err := t.line(cells); err != nil {
			return err
		}
	}
	t.held = nil
	return nil
}

// grow widens the columns to fit cells.
func (t *streamTable) grow(cells []string) {
	for j := 0; j < len(cells)-1; j++ {
		w := utf8.RuneCountInString(cells[j]) + 2
		if j == len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		t.widths[j] = max(t.widths[j], w)
	}
}

const spaces = "                                                                "

// line writes one line of cells, widening columns it overflows.
func (t *streamTable) line(cells []string) error {
	t.grow(cells)
	for j, c := range cells {
		t.w.WriteString(c)
		if j == len(cells)-1 {
			break
		}
		for pad := t.widths[j] - utf8.RuneCountInString(c); pad > 0; {
			n := min(pad, len(spaces))
			t.w.WriteString(spaces[:n])
			pad -= n
		}
	}
	if err := t.w.WriteByte('\n'); err != nil {
		t.err = err
	}
	return t.err
}
