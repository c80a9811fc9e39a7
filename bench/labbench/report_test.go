package labbench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testResult() *Result {
	kea := Step{Offered: 4000, Rate: 4000, Pass: true, CPU: 2, CPUPer1k: 100}
	hook4k := Step{Offered: 4000, Rate: 4000, Pass: true, CPU: 2, CPUPer1k: 80}
	hook := Step{Offered: 8000, Rate: 8000, Pass: true, CPU: 2, CPUPer1k: 50, ClientCPU: 1.92, ClientCPUPer1k: 40, ClientBound: true}
	r := &Result{
		Started:  time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC),
		Machine:  Machine{Cores: 2},
		Settings: Settings{StepSeconds: 6, MaxLossPct: 1},
		Runs: []Run{
			{Name: "kea", Server: "kea", Leases: "address-only", Steps: []Step{kea, {Offered: 6000, Loss: 9}}},
			{Name: "kea-slow", Server: "kea", Leases: "address-only", Steps: []Step{{Offered: 2000, Rate: 2000, Pass: true, CPUPer1k: 90}}},
			{Name: "hook6", Server: "hook6", Leases: "address-only", Steps: []Step{hook4k, hook}},
			{Name: "hook6-napd", Server: "hook6", Leases: "address-and-prefix", Steps: []Step{hook}},
			{Name: "broken", Server: "hook6", Leases: "address-only", Error: "hook6d exited\nmore"},
		},
		Scale: &Scale{Leases: 1000, RSSLoaded: 3 << 20, RSSEmpty: 1 << 20, BytesPerLease: 2097, RestartS: 0.5},
	}
	for i := range r.Runs {
		r.Runs[i].Finish()
	}
	r.Runs[0].Latency = &Latency{Offered: 4000, Loss: 0.25, SA: Exchange{P50ms: 1.5, P99ms: 9.75}, RR: Exchange{P50ms: 2.5, P99ms: 12.5}}
	r.Runs[2].Latency = &Latency{NotMeasured: "latency step: kea-dhcp6 exited"}
	r.Runs[4].Latency = &Latency{NotMeasured: NoLatency}
	return r
}

func TestComputeRatios(t *testing.T) {
	r := testResult()
	r.ComputeRatios()
	// hook6-napd has no Kea run of its lease types; broken has no sustained
	// step; kea-slow is not Kea's best.
	if len(r.Ratios) != 1 {
		t.Fatalf("ratios %+v, want hook6/kea only", r.Ratios)
	}
	if ra := r.Ratios[0]; ra.Run != "hook6" || ra.Versus != "kea" || ra.Ratio != 2 || ra.CPURatio != 0.5 {
		t.Errorf("ratio %+v, want 2× the rate at half the CPU per exchange", ra)
	}
	if ra := r.Ratios[0]; ra.SameRate != 4000 || ra.CPURatioSameRate != 0.8 {
		t.Errorf("same-rate comparison %+v, want 0.8 at 4000/s", ra)
	}
	// 2 cores at 2× Kea's 4000/s: 250 µs per exchange, 40 of them
	// perfdhcp's; at 1.5×, 333 µs.
	want := []Budget{
		{Times: 1.5, Rate: 6000, ClientUS: 40, ServerUS: 2e6/6000.0 - 40, UsedUS: 50},
		{Times: 2, Rate: 8000, ClientUS: 40, ServerUS: 210, UsedUS: 50},
	}
	if got := r.Ratios[0].Budgets; !slices.Equal(got, want) {
		t.Errorf("budgets %+v, want %+v", got, want)
	}
}

// TestBudgetsCountThePartner: a failover pair's CPU per exchange is both
// servers'.
func TestBudgetsCountThePartner(t *testing.T) {
	s := Step{Rate: 1000, CPU: 2, PeerCPU: 1, CPUPer1k: 100, ClientCPUPer1k: 50}
	bs := budgets(2, 1000, s)
	if len(bs) != 2 || bs[1].UsedUS != 150 || bs[1].ServerUS != 950 {
		t.Errorf("budgets %+v, want the pair at 150 µs of 950 at 2×", bs)
	}
	if budgets(2, 1000, Step{Rate: 1000}) != nil {
		t.Error("budgets without perfdhcp's CPU")
	}
}

func TestWriteTable(t *testing.T) {
	r := testResult()
	r.ComputeRatios()
	var b bytes.Buffer
	r.WriteTable(&b)
	out := b.String()
	for _, want := range []string{"2 cores", "≥8000", "4000", "hook6d exited", "2.00× the exchanges/s", "0.80× (at 4000/s both)", "2097 bytes per lease", "restart",
		"at 2.0× (8000/s) perfdhcp, at its 40 µs per exchange, leaves 210 µs per exchange of the 2 cores to the server; this one used 50"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "more") {
		t.Errorf("table shows more than an error's first line:\n%s", out)
	}
}

func TestWriteTableLatency(t *testing.T) {
	var b bytes.Buffer
	testResult().WriteTable(&b)
	lines := strings.Split(b.String(), "\n")
	row := func(name string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), name+"  ") { // cells are 2 spaces apart
				return l
			}
		}
		t.Fatalf("no row for %s:\n%s", name, b.String())
		return ""
	}
	// kea's latency step at 4000/s: its loss and percentiles, at the end.
	if f := strings.Fields(row("kea")); !slices.Equal(f[len(f)-4:], []string{"4000", "0.25", "1.50/9.75", "2.50/12.50"}) {
		t.Errorf("kea's latency cells %q", f)
	}
	// hook6's step failed: no figures, and why.
	if r := row("hook6"); !strings.HasSuffix(r, "- latency step: kea-dhcp6 exited") {
		t.Errorf("hook6's row %q lacks why its latency is missing", r)
	}
	// kea-slow was never measured (nil): dashes.
	if f := strings.Fields(row("kea-slow")); !slices.Equal(f[len(f)-4:], []string{"-", "-", "-", "-"}) {
		t.Errorf("kea-slow's latency cells %q", f)
	}
	// hook6-napd's step: perfdhcp's 40 ms/1k, and the machine 33% busy
	// (2 s of server and 1.92 of perfdhcp of 2 cores' 6 s).
	if f := strings.Fields(row("hook6-napd")); !slices.Equal(f[9:12], []string{"40", "33", "0.0"}) {
		t.Errorf("hook6-napd's perfdhcp, busy and load cells %q", f)
	}
	if !strings.Contains(b.String(), "perfdhcp -x t") {
		t.Error("the footnote does not say where the percentiles come from")
	}
}

func TestStepLine(t *testing.T) {
	ramp := Step{Offered: 6000, Rate: 5990, RR: Exchange{AvgMs: 1.25, MaxMs: 30}, Pass: true}
	if l := StepLine("kea", ramp); !strings.Contains(l, "RR avg   1.25 max   30.0 ms ") || strings.Contains(l, "p50") {
		t.Errorf("ramp step line %q: want avg/max and no percentiles", l)
	}
	ramp.RR.P50ms, ramp.RR.P99ms = 0.5, 7.25
	if l := StepLine("kea", ramp); !strings.Contains(l, "p50 0.50 p99 7.25 ms") {
		t.Errorf("latency step line %q lacks its percentiles", l)
	}
}

func TestWriteJSON(t *testing.T) {
	dir := t.TempDir()
	r := testResult()
	path, err := r.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "20261127T040000Z.json" {
		t.Errorf("results written to %s", path)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(filepath.Join(dir, "latest.json"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("latest.json differs from %s", path)
	}
	var back Result
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 5 || back.Runs[2].Sustained == nil || back.Runs[2].Sustained.Rate != 8000 || back.Scale.Leases != 1000 {
		t.Errorf("read back %+v", back)
	}
	if l := back.Runs[0].Latency; l == nil || l.Offered != 4000 || l.RR.P99ms != 12.5 {
		t.Errorf("kea's latency read back as %+v", l)
	}
	if l := back.Runs[4].Latency; l == nil || l.NotMeasured != NoLatency {
		t.Errorf("broken's latency read back as %+v, want %q", l, NoLatency)
	}
	// Ramp steps have no percentiles: none written, rather than zeros.
	if bytes.Contains(a, []byte(`"p50_ms": 0,`)) {
		t.Error("zero percentiles written for steps without timestamps")
	}
}
