package failover

import (
	"math"
	"sync"
	"time"
)

// histogram counts durations in logarithmic buckets (each 25% wider than
// the last, from 10µs), enough to report replication-lag quantiles.
type histogram struct {
	mu     sync.Mutex
	counts [80]uint64
	n      uint64
}

const histBase = 10 * time.Microsecond

var histGrowth = math.Log(1.25)

func newHistogram() *histogram { return &histogram{} }

func bucketOf(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histBase))/histGrowth) + 1
	return min(i, 79)
}

// upper is the upper bound of bucket i.
func upper(i int) time.Duration {
	return time.Duration(float64(histBase) * math.Pow(1.25, float64(i)))
}

func (h *histogram) observe(d time.Duration) {
	h.mu.Lock()
	h.counts[bucketOf(d)]++
	h.n++
	h.mu.Unlock()
}

// quantile returns the q-quantile (0 < q ≤ 1) as a bucket's upper bound,
// zero without observations.
func (h *histogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			return upper(i)
		}
	}
	return upper(len(h.counts) - 1)
}
