package labbench

// The ramp's steps run perfdhcp without -x t: with it perfdhcp keeps and
// prints every packet, which cost it about half a core more at 12,000
// exchanges/s on 2 cores (9–10 s of CPU per 6 s step against 6 s), taken
// from the server under test. The latency percentiles come instead from
// one more step per run, with -x t, at the rate the run sustained.

// Latency is a run's latency step: one step with perfdhcp -x t at the
// offered rate of the run's sustained step, after the ramps, whose
// per-exchange timestamps give p50 and p99.
type Latency struct {
	// Offered is the step's offered rate, the sustained step's; 0 when
	// the step was not run (NotMeasured says why).
	Offered int     `json:"offered_rate"`
	Rate    float64 `json:"exchanges_per_s"`
	// Loss is the step's own: -x t costs perfdhcp CPU, so the step may
	// lose more than the ramp's step at the same rate did.
	Loss      float64  `json:"loss_pct"`
	SA        Exchange `json:"solicit_advertise"`
	RR        Exchange `json:"request_reply"`
	ClientCPU float64  `json:"client_cpu_s"`
	// NotMeasured is why there are no figures: the run sustained no rate,
	// or the step failed.
	NotMeasured string `json:"not_measured,omitempty"`
}

// NoLatency is why a run that sustained no rate has no latency figures.
const NoLatency = "no sustained rate to measure at"

// MeasureLatency sets r.Latency: step (which must run perfdhcp with -x t)
// at the offered rate of r's sustained step, or, if r sustained nothing,
// no step and NoLatency. A step's error is returned and kept as why the
// figures are missing.
func (r *Run) MeasureLatency(step func(rate int) (Step, error)) error {
	if r.Sustained == nil {
		r.Latency = &Latency{NotMeasured: NoLatency}
		return nil
	}
	s, err := step(r.Sustained.Offered)
	if err != nil {
		r.Latency = &Latency{NotMeasured: "latency step: " + err.Error()}
		return err
	}
	r.Latency = &Latency{Offered: s.Offered, Rate: s.Rate, Loss: s.Loss, SA: s.SA, RR: s.RR, ClientCPU: s.ClientCPU}
	return nil
}
