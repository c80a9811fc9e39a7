package labbench

import (
	"bufio"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// perfdhcp (Kea 2.2) prints min, avg, max and standard deviation of each
// exchange's delay, no percentiles. With -x t it also lists the sent and
// received timestamps of every completed exchange; Delays reads that list
// so the benchmark can report p50 and p99 itself.

// Delays reads the "***Timestamps for packets: NAME***" sections of
// perfdhcp -x t output and returns each exchange type's delays.
func Delays(out string) (map[string][]time.Duration, error) {
	ds := map[string][]time.Duration{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "***Timestamps for packets:"); ok {
			cur = strings.TrimSpace(strings.TrimSuffix(name, "***"))
			ds[cur] = nil
			continue
		}
		if strings.HasPrefix(line, "***") {
			cur = ""
			continue
		}
		v, ok := strings.CutPrefix(line, "sent / received:")
		if !ok || cur == "" {
			continue
		}
		d, err := parseSentReceived(v)
		if err != nil {
			return nil, fmt.Errorf("perfdhcp timestamps of %s: %w", cur, err)
		}
		ds[cur] = append(ds[cur], d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read perfdhcp output: %w", err)
	}
	return ds, nil
}

// parseSentReceived reads " 000000.000075 / 000000.003040" (seconds since
// the test started) into received minus sent.
func parseSentReceived(v string) (time.Duration, error) {
	s, r, ok := strings.Cut(v, "/")
	if !ok {
		return 0, fmt.Errorf("timestamps %q: want SENT / RECEIVED", v)
	}
	sent, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("sent timestamp %q: %w", s, err)
	}
	recv, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
	if err != nil {
		return 0, fmt.Errorf("received timestamp %q: %w", r, err)
	}
	return time.Duration(math.Round((recv-sent)*1e6)) * time.Microsecond, nil
}

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// ds, which it sorts; zero for no values.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	return ds[min(max(rank, 1), len(ds))-1]
}
