package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
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
