package labbench

import (
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// MaxLoss is the share of exchanges (percent) a step may lose and still
// count as sustained.
const MaxLoss = 1.0

// clientShortfall: a step whose client sent fewer Solicits than this share
// of the offered rate was limited by the load generator, not the server.
const clientShortfall = 0.95

// Exchange is one exchange type's figures in a step. P50ms and P99ms
// need perfdhcp -x t, which only the latency step runs with (see
// Latency); a ramp step has none.
type Exchange struct {
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Drops    int     `json:"drops"`
	P50ms    float64 `json:"p50_ms,omitempty"`
	P99ms    float64 `json:"p99_ms,omitempty"`
	AvgMs    float64 `json:"avg_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// Step is one offered rate run against one server.
type Step struct {
	Offered int `json:"offered_rate"`
	// Rate is completed 4-way exchanges (Replies received) per second of
	// the step.
	Rate float64 `json:"exchanges_per_s"`
	// Loss is the share of initiated exchanges (Solicits sent) that did
	// not complete (no Reply), in percent.
	Loss  float64  `json:"loss_pct"`
	Drops int      `json:"drops"` // perfdhcp's drops, both exchanges
	SA    Exchange `json:"solicit_advertise"`
	RR    Exchange `json:"request_reply"`
	// CPU is the CPU time (user+system, all threads) the server process
	// used during the step; PeerCPU the failover partner's.
	CPU     float64 `json:"server_cpu_s"`
	PeerCPU float64 `json:"peer_cpu_s,omitempty"`
	// CPUPer1k is server CPU milliseconds per 1000 completed exchanges.
	CPUPer1k float64 `json:"server_cpu_ms_per_1k"`
	// ClientCPU is perfdhcp's CPU time during the step: the load
	// generator's share of the machine; ClientCPUPer1k the same per 1000
	// completed exchanges.
	ClientCPU      float64 `json:"client_cpu_s"`
	ClientCPUPer1k float64 `json:"client_cpu_ms_per_1k,omitempty"`
	// Overflows counts datagrams dropped for a full socket receive buffer
	// during the step, in the server's namespace and in perfdhcp's: where
	// a loss happened.
	ServerOverflows int     `json:"server_socket_overflows"`
	ClientOverflows int     `json:"client_socket_overflows"`
	Load            float64 `json:"load_avg_1m"` // the machine's, at the step's end
	Pass            bool    `json:"pass"`
	ClientBound     bool    `json:"client_bound,omitempty"`
	Retried         bool    `json:"retried,omitempty"`
}

// NewStep computes a step's figures from perfdhcp's result, the step's
// duration and the server CPU time it used. The percentiles come from
// perfdhcp's -x t timestamps, and are zero without them.
func NewStep(offered int, dur time.Duration, r lab.PerfResult, cpu time.Duration) (Step, error) {
	delays, err := Delays(r.Output)
	if err != nil {
		return Step{}, err
	}
	sa, rr := r.Exchanges["SOLICIT-ADVERTISE"], r.Exchanges["REQUEST-REPLY"]
	s := Step{
		Offered: offered,
		Rate:    float64(rr.Received) / dur.Seconds(),
		Drops:   sa.Drops + rr.Drops,
		SA:      exchangeOf(sa, delays["SOLICIT-ADVERTISE"]),
		RR:      exchangeOf(rr, delays["REQUEST-REPLY"]),
		CPU:     cpu.Seconds(),

		ClientCPU: r.CPU.Seconds(),
	}
	if sa.Sent > 0 {
		s.Loss = 100 * float64(sa.Sent-rr.Received) / float64(sa.Sent)
	} else {
		s.Loss = 100
	}
	if rr.Received > 0 {
		s.CPUPer1k = 1e6 * s.CPU / float64(rr.Received)
		s.ClientCPUPer1k = 1e6 * s.ClientCPU / float64(rr.Received)
	}
	s.ClientBound = float64(sa.Sent) < clientShortfall*float64(offered)*dur.Seconds()
	s.Pass = s.Loss <= MaxLoss
	return s, nil
}

func exchangeOf(e lab.PerfExchange, ds []time.Duration) Exchange {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Exchange{
		Sent: e.Sent, Received: e.Received, Drops: e.Drops,
		P50ms: ms(Percentile(ds, 50)), P99ms: ms(Percentile(ds, 99)),
		AvgMs: ms(e.AvgDelay), MaxMs: ms(e.MaxDelay),
	}
}

// Ramp runs step at each rate in turn until one fails; see RampAll.
func Ramp(rates []int, attempts int, step func(rate int) (Step, error), report func(Step)) ([]Step, error) {
	steps, errs := RampAll(rates, 1, attempts,
		func(_, rate int) (Step, error) { return step(rate) },
		func(_ int, s Step) { report(s) })
	return steps[0], errs[0]
}

// RampAll ramps n runs together: at each rate, every run still going
// runs one step, so all runs meet the machine in the same state (it may
// be shared) and a ramp's late steps are not all taken at a busier time
// than another's. A run stops at the first rate where attempts tries in a
// row all fail (one hiccup of a shared machine should not end it), or at
// a step limited by the load generator, since higher rates cannot be
// offered: its rate is then a lower bound of what the server sustains. A
// run whose step returns an error stops with that error. report sees
// every step, retries included, as it completes.
func RampAll(rates []int, n, attempts int, step func(run, rate int) (Step, error), report func(run int, s Step)) ([][]Step, []error) {
	steps, errs := make([][]Step, n), make([]error, n)
	done := make([]bool, n)
	for _, rate := range rates {
		for run := range n {
			if done[run] {
				continue
			}
			s, err := stepWithRetry(rate, attempts, func(rate int) (Step, error) { return step(run, rate) },
				func(s Step) { report(run, s) })
			if err != nil {
				errs[run], done[run] = err, true
				continue
			}
			steps[run] = append(steps[run], s)
			done[run] = !s.Pass || s.ClientBound
		}
	}
	return steps, errs
}

// stepWithRetry runs a step up to attempts times until it passes; it
// returns the passing try, else the one that lost least.
func stepWithRetry(rate, attempts int, step func(rate int) (Step, error), report func(Step)) (Step, error) {
	var best Step
	for i := range max(attempts, 1) {
		s, err := step(rate)
		if err != nil {
			return s, err
		}
		s.Retried = i > 0
		report(s)
		if s.Pass {
			return s, nil
		}
		if i == 0 || s.Loss < best.Loss {
			best = s
		}
	}
	return best, nil
}

// Sustained returns the passing step with the highest completed rate.
func Sustained(steps []Step) (Step, bool) {
	var best Step
	found := false
	for _, s := range steps {
		if s.Pass && (!found || s.Rate > best.Rate) {
			best, found = s, true
		}
	}
	return best, found
}
