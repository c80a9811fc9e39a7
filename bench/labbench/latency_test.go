package labbench

import (
	"errors"
	"testing"
)

func TestMeasureLatencyAtSustainedRate(t *testing.T) {
	r := Run{Steps: []Step{
		{Offered: 6000, Rate: 5990, Pass: true},
		{Offered: 12000, Rate: 11950, Pass: true, ClientBound: true},
		{Offered: 16000, Rate: 14000, Loss: 12},
	}}
	r.Finish()
	var rates []int
	err := r.MeasureLatency(func(rate int) (Step, error) {
		rates = append(rates, rate)
		return Step{Offered: rate, Rate: 11000, Loss: 2.5, ClientCPU: 9,
			SA: Exchange{P50ms: 1, P99ms: 4}, RR: Exchange{P50ms: 2, P99ms: 8, AvgMs: 3}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sustained step's offered rate (not its achieved one), once.
	if len(rates) != 1 || rates[0] != 12000 {
		t.Fatalf("latency steps at %v, want one at 12000", rates)
	}
	want := Latency{Offered: 12000, Rate: 11000, Loss: 2.5, ClientCPU: 9,
		SA: Exchange{P50ms: 1, P99ms: 4}, RR: Exchange{P50ms: 2, P99ms: 8, AvgMs: 3}}
	if r.Latency == nil || *r.Latency != want {
		t.Errorf("latency %+v, want %+v", r.Latency, want)
	}
	// The ramp's figures stay the ramp's.
	if r.Sustained.Offered != 12000 || r.Sustained.Loss != 0 {
		t.Errorf("sustained step changed: %+v", r.Sustained)
	}
}

func TestMeasureLatencyWithoutSustainedRate(t *testing.T) {
	r := Run{Steps: []Step{{Offered: 2000, Loss: 5}}}
	r.Finish()
	err := r.MeasureLatency(func(int) (Step, error) {
		t.Error("a latency step for a run that sustained nothing")
		return Step{}, nil
	})
	if err != nil || r.Latency == nil || r.Latency.NotMeasured != NoLatency || r.Latency.Offered != 0 {
		t.Errorf("latency %+v, err %v; want not measured: %q", r.Latency, err, NoLatency)
	}
}

func TestMeasureLatencyStepError(t *testing.T) {
	r := Run{Steps: []Step{{Offered: 2000, Rate: 2000, Pass: true}}}
	r.Finish()
	boom := errors.New("kea-dhcp6 exited")
	err := r.MeasureLatency(func(int) (Step, error) { return Step{}, boom })
	if !errors.Is(err, boom) || r.Latency == nil || r.Latency.NotMeasured != "latency step: kea-dhcp6 exited" {
		t.Errorf("latency %+v, err %v", r.Latency, err)
	}
}
