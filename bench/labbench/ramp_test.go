package labbench

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

func TestNewStep(t *testing.T) {
	r, err := lab.ParsePerfdhcp(perfdhcpOut)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStep(1, 2*time.Second, r, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// 4 Solicits sent, 2 Replies received: half the exchanges lost.
	if s.Rate != 1 || s.Loss != 50 || s.Drops != 2 || s.Pass {
		t.Errorf("step = %+v, want 1 exchange/s, 50%% loss, 2 drops, failed", s)
	}
	if s.SA.P50ms != 0.99 || s.SA.P99ms != 2.965 || s.RR.P50ms != 0.1 || s.RR.P99ms != 0.2 {
		t.Errorf("percentiles SA %+v RR %+v", s.SA, s.RR)
	}
	if s.RR.AvgMs != 0.15 || s.RR.MaxMs != 0.2 || s.SA.Sent != 4 || s.RR.Received != 2 {
		t.Errorf("perfdhcp figures RR %+v SA %+v", s.RR, s.SA)
	}
	if s.CPU != 3 || s.CPUPer1k != 1.5e6 {
		t.Errorf("cpu %v s, %v ms/1k, want 3 and 1.5e6 (1.5 s per exchange)", s.CPU, s.CPUPer1k)
	}
	r.CPU = time.Second
	if s, _ := NewStep(1, 2*time.Second, r, 0); s.ClientCPU != 1 || s.ClientCPUPer1k != 5e5 {
		t.Errorf("perfdhcp cpu %v s, %v ms/1k, want 1 and 5e5", s.ClientCPU, s.ClientCPUPer1k)
	}
	// 4 Solicits in 2 s at an offered 1/s is not client-bound; at 10/s it is.
	if s.ClientBound {
		t.Error("client-bound at 1/s")
	}
	if s, _ := NewStep(10, 2*time.Second, r, 0); !s.ClientBound {
		t.Error("4 Solicits in 2 s at 10/s offered not seen as client-bound")
	}
}

// fakeSteps returns a step function passing up to limit and counting calls.
func fakeSteps(limit int, calls map[int]int, flaky map[int]bool) func(int) (Step, error) {
	return func(rate int) (Step, error) {
		calls[rate]++
		pass := rate <= limit
		if flaky[rate] && calls[rate] == 1 {
			pass = false
		}
		loss := 0.0
		if !pass {
			loss = 5
		}
		return Step{Offered: rate, Rate: float64(rate), Loss: loss, Pass: pass}, nil
	}
}

func TestRampStopsAfterFailureAndRetry(t *testing.T) {
	calls := map[int]int{}
	var seen []Step
	steps, err := Ramp([]int{1, 2, 3, 4, 5}, 2, fakeSteps(2, calls, map[int]bool{1: true}), func(s Step) { seen = append(seen, s) })
	if err != nil {
		t.Fatal(err)
	}
	// 1 fails once then passes on retry; 2 passes; 3 fails twice; 4, 5 never run.
	if len(steps) != 3 || calls[1] != 2 || calls[2] != 1 || calls[3] != 2 || calls[4] != 0 {
		t.Fatalf("steps %+v, calls %v", steps, calls)
	}
	if !steps[0].Pass || !steps[0].Retried || steps[2].Pass {
		t.Errorf("steps %+v", steps)
	}
	if len(seen) != 5 {
		t.Errorf("reported %d steps, want 5 (retries included)", len(seen))
	}
	best, ok := Sustained(steps)
	if !ok || best.Offered != 2 {
		t.Errorf("sustained %+v %v, want rate 2", best, ok)
	}
}

func TestRampStopsWhenClientBound(t *testing.T) {
	n := 0
	steps, err := Ramp([]int{1, 2, 3}, 2, func(rate int) (Step, error) {
		n++
		return Step{Offered: rate, Rate: float64(rate), Pass: true, ClientBound: rate == 2}, nil
	}, func(Step) {})
	if err != nil || len(steps) != 2 || n != 2 {
		t.Fatalf("steps %+v, %d calls, err %v", steps, n, err)
	}
}

func TestRampError(t *testing.T) {
	boom := errors.New("boom")
	steps, err := Ramp([]int{1, 2}, 2, func(rate int) (Step, error) {
		if rate == 2 {
			return Step{}, boom
		}
		return Step{Offered: rate, Pass: true}, nil
	}, func(Step) {})
	if !errors.Is(err, boom) || len(steps) != 1 {
		t.Fatalf("steps %+v, err %v", steps, err)
	}
	if _, ok := Sustained(nil); ok {
		t.Error("sustained step out of nothing")
	}
}

func TestRampAllInterleavesRuns(t *testing.T) {
	var order []string
	limits := []int{2, 4}
	steps, errs := RampAll([]int{1, 2, 3, 4, 5}, 2, 2, func(run, rate int) (Step, error) {
		order = append(order, string(rune('a'+run))+string(rune('0'+rate)))
		pass := rate <= limits[run]
		return Step{Offered: rate, Rate: float64(rate), Pass: pass, Loss: map[bool]float64{true: 0, false: 9}[pass]}, nil
	}, func(int, Step) {})
	// a fails at 3 (and its retry); b goes on alone and fails at 5.
	want := "a1 b1 a2 b2 a3 a3 b3 b4 b5 b5"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("order %s, want %s", got, want)
	}
	if errs[0] != nil || errs[1] != nil || len(steps[0]) != 3 || len(steps[1]) != 5 {
		t.Errorf("steps %+v, errs %v", steps, errs)
	}
}

func TestRampTriesAttemptsTimesAndKeepsTheLeastLoss(t *testing.T) {
	losses := []float64{7, 3, 5}
	n := 0
	steps, err := Ramp([]int{1, 2}, 3, func(rate int) (Step, error) {
		n++
		return Step{Offered: rate, Loss: losses[n-1]}, nil
	}, func(Step) {})
	if err != nil || n != 3 || len(steps) != 1 {
		t.Fatalf("%d tries, steps %+v, err %v; want 3 tries of rate 1 and a stop", n, steps, err)
	}
	if steps[0].Loss != 3 || !steps[0].Retried {
		t.Errorf("kept %+v, want the second try (3%% loss)", steps[0])
	}
}
