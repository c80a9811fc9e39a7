package labbench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Run is one server setup ramped up: its steps and the best of them.
type Run struct {
	Name   string `json:"name"`   // e.g. "hook6", "kea", "hook6+4 scripts"
	Server string `json:"server"` // "hook6" or "kea"
	Leases string `json:"leases"` // perfdhcp -e: "address-only", "address-and-prefix"
	Steps  []Step `json:"steps"`
	// Sustained is the passing step with the highest rate; nil when none
	// passed.
	Sustained *Step `json:"sustained,omitempty"`
	// Latency is the step at the sustained rate with perfdhcp -x t that
	// the percentiles come from; nil for a run that was not ramped.
	Latency *Latency `json:"latency,omitempty"`
	Error   string   `json:"error,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// Finish sets Sustained from the steps.
func (r *Run) Finish() {
	if s, ok := Sustained(r.Steps); ok {
		r.Sustained = &s
	}
}

// Ratio is one hook6 setup's sustained rate over Kea's in the same run.
type Ratio struct {
	Run    string  `json:"run"`
	Versus string  `json:"versus"`
	Ratio  float64 `json:"ratio"`
	// CPURatio is hook6's server CPU time per exchange over Kea's, each at
	// its sustained step (below 1: hook6 spends less CPU per exchange).
	CPURatio float64 `json:"cpu_per_exchange_ratio,omitempty"`
	// SameRate is the highest offered rate both passed, and
	// CPURatioSameRate the CPU ratio there: the fairer cost comparison,
	// since an exchange costs less CPU at higher rates (fixed costs spread).
	SameRate         int     `json:"same_rate,omitempty"`
	CPURatioSameRate float64 `json:"cpu_per_exchange_ratio_same_rate,omitempty"`
	// Budgets say what reaching a multiple of Kea's rate would take on
	// this machine, given what perfdhcp cost per exchange in this run.
	Budgets []Budget `json:"budgets,omitempty"`
}

// Budget is the server CPU per exchange the machine leaves at Times ×
// Kea's sustained rate once perfdhcp has had its share: every core's
// second, divided among Rate exchanges, less perfdhcp's cost per exchange
// (measured at the hook6 run's sustained step). A server that needs more
// cannot reach the rate on this machine, however it is built; one at or
// below ServerUS could, if nothing else (the kernel's queues, perfdhcp's
// own limits) gets in the way first.
type Budget struct {
	Times    float64 `json:"times_kea"`
	Rate     float64 `json:"rate"`
	ClientUS float64 `json:"perfdhcp_us_per_exchange"`
	ServerUS float64 `json:"server_us_per_exchange"` // negative: perfdhcp alone needs more than the machine
	UsedUS   float64 `json:"server_us_per_exchange_used"`
}

// budgetTimes are the multiples of Kea's rate the targets name.
var budgetTimes = []float64{1.5, 2}

func budgets(cores int, kea float64, h Step) []Budget {
	if cores <= 0 || kea <= 0 || h.ClientCPUPer1k <= 0 {
		return nil
	}
	used := h.CPUPer1k
	if h.CPU > 0 {
		used *= (h.CPU + h.PeerCPU) / h.CPU // the failover partner's too
	}
	var bs []Budget
	for _, m := range budgetTimes {
		rate := m * kea
		// CPU ms per 1000 exchanges is µs per exchange.
		bs = append(bs, Budget{Times: m, Rate: rate, ClientUS: h.ClientCPUPer1k,
			ServerUS: float64(cores)*1e6/rate - h.ClientCPUPer1k, UsedUS: used})
	}
	return bs
}

// sameRate returns the passing steps of a and b at the highest offered
// rate both passed.
func sameRate(a, b []Step) (Step, Step, bool) {
	var sa, sb Step
	found := false
	for _, x := range a {
		for _, y := range b {
			if x.Pass && y.Pass && x.Offered == y.Offered && (!found || x.Offered > sa.Offered) {
				sa, sb, found = x, y, true
			}
		}
	}
	return sa, sb, found
}

// Scale holds the large-store figures of hook6.
type Scale struct {
	Leases        int     `json:"leases"`
	Addresses     int     `json:"addresses"`
	Prefixes      int     `json:"delegated_prefixes"`
	GenerateS     float64 `json:"generate_s"`
	DBBytes       int64   `json:"db_bytes"`
	RSSEmpty      int64   `json:"rss_empty_bytes"`
	RSSLoaded     int64   `json:"rss_loaded_bytes"`
	BytesPerLease float64 `json:"rss_bytes_per_lease"`
	// AnonEmpty, AnonLoaded and AnonPerLease are the same without file
	// pages (the mapped lease database the load read through).
	AnonEmpty    int64   `json:"rss_anon_empty_bytes"`
	AnonLoaded   int64   `json:"rss_anon_loaded_bytes"`
	AnonPerLease float64 `json:"rss_anon_bytes_per_lease"`
	RestartS     float64 `json:"restart_s"` // start → control socket answers
	// RestartCPUS is the CPU time hook6d had used when it answered: the
	// restart's cost, less sensitive to a busy machine than RestartS.
	RestartCPUS  float64 `json:"restart_cpu_s"`
	ListS        float64 `json:"lease_list_json_s"`
	ListBytes    int64   `json:"lease_list_json_bytes"`
	ListedLeases int     `json:"lease_list_count"`
	// APIListS and APIListBytes are GET /v1/leases on the control socket
	// read straight, without hook6ctl.
	APIListS       float64 `json:"api_lease_list_s"`
	APIListBytes   int64   `json:"api_lease_list_bytes"`
	DeleteS        float64 `json:"lease_delete_all_s"`
	LeasesAfterDel int     `json:"leases_after_delete"`
	Load           float64 `json:"load_avg_1m"`
	Error          string  `json:"error,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Cores     int     `json:"cores"`
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go"`
	Kea       string  `json:"kea"`
	Perfdhcp  string  `json:"perfdhcp"`
	Commit    string  `json:"hook6_commit"`
	LoadStart float64 `json:"load_avg_1m_at_start"`
}

// Settings are the knobs of the run.
type Settings struct {
	StepSeconds float64 `json:"step_s"`
	Rates       []int   `json:"rates"`
	Attempts    int     `json:"attempts"`
	Clients     int     `json:"clients"`
	KeaThreads  int     `json:"kea_threads"`
	KeaQueue    int     `json:"kea_packet_queue"`
	MaxLossPct  float64 `json:"max_loss_pct"`
	RmemDefault int     `json:"net_core_rmem_default"` // while the bench ran
}

// Result is a whole `make bench` run.
type Result struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Runs     []Run     `json:"runs"`
	Ratios   []Ratio   `json:"ratios"`
	Scale    *Scale    `json:"scale,omitempty"`
	Profiles []string  `json:"hook6_profiles,omitempty"`
}

// ComputeRatios compares every hook6 run with the best Kea run (highest
// sustained rate) of the same lease types, so hook6 is measured against
// Kea's best setup of the run.
func (r *Result) ComputeRatios() {
	r.Ratios = nil
	for _, h := range r.Runs {
		if h.Server != "hook6" || h.Sustained == nil {
			continue
		}
		k, ok := r.bestKea(h.Leases)
		if !ok {
			continue
		}
		ra := Ratio{Run: h.Name, Versus: k.Name, Ratio: h.Sustained.Rate / k.Sustained.Rate}
		if k.Sustained.CPUPer1k > 0 {
			ra.CPURatio = h.Sustained.CPUPer1k / k.Sustained.CPUPer1k
		}
		if hs, ks, ok := sameRate(h.Steps, k.Steps); ok && ks.CPUPer1k > 0 {
			ra.SameRate, ra.CPURatioSameRate = hs.Offered, hs.CPUPer1k/ks.CPUPer1k
		}
		ra.Budgets = budgets(r.Machine.Cores, k.Sustained.Rate, *h.Sustained)
		r.Ratios = append(r.Ratios, ra)
	}
}

// bestKea returns the Kea run of these lease types that sustained the
// highest rate.
func (r *Result) bestKea(leases string) (Run, bool) {
	var best Run
	found := false
	for _, k := range r.Runs {
		if k.Server != "kea" || k.Leases != leases || k.Sustained == nil || k.Sustained.Rate == 0 {
			continue
		}
		if !found || k.Sustained.Rate > best.Sustained.Rate {
			best, found = k, true
		}
	}
	return best, found
}

// WriteJSON writes the result to dir as RESULT-<started>.json and as
// latest.json, and returns the first path.
func (r *Result) WriteJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results directory: %w", err)
	}
	path := filepath.Join(dir, r.Started.UTC().Format("20060102T150405Z")+".json")
	for _, p := range []string{path, filepath.Join(dir, "latest.json")} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("write results: %w", err)
		}
	}
	return path, nil
}

// StepLine is the one-line progress report of a step; Request–Reply
// percentiles only for a step run with perfdhcp -x t.
func StepLine(run string, s Step) string {
	verdict := "ok"
	switch {
	case !s.Pass:
		verdict = "FAIL"
	case s.ClientBound:
		verdict = "ok (client-bound)"
	}
	if s.Retried {
		verdict += " (retry)"
	}
	rr := fmt.Sprintf("RR avg %6.2f max %6.1f ms", s.RR.AvgMs, s.RR.MaxMs)
	if s.RR.P50ms > 0 {
		rr += fmt.Sprintf(" p50 %.2f p99 %.2f ms", s.RR.P50ms, s.RR.P99ms)
	}
	return fmt.Sprintf("%-22s offered %6d/s  done %8.0f/s  loss %6.2f%%  %s  cpu %5.2fs perfdhcp %5.2fs  overflows srv %d cli %d  load %4.1f  %s",
		run, s.Offered, s.Rate, s.Loss, rr, s.CPU, s.ClientCPU,
		s.ServerOverflows, s.ClientOverflows, s.Load, verdict)
}

// WriteTable prints the summary: one line per run with its sustained
// step, then the ratios and the scale figures.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nhook6 vs Kea — %d cores, %s, load %.1f at start; %gs steps, loss ≤ %g%%\n\n",
		r.Machine.Cores, r.Machine.Kernel, r.Machine.LoadStart, r.Settings.StepSeconds, r.Settings.MaxLossPct)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tleases\tsustained/s\toffered\tloss %\tdrops\tRR avg/max ms\tCPU s\tCPU ms/1k\tperfdhcp ms/1k\tbusy %\tload\tlat. step/s\tlat. loss %\tSA p50/p99 ms\tRR p50/p99 ms\t")
	for _, run := range r.Runs {
		fmt.Fprintln(tw, runRow(run, float64(r.Machine.Cores)*r.Settings.StepSeconds))
	}
	tw.Flush()
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w)
		for _, ra := range r.Ratios {
			fmt.Fprintf(w, "%-20s vs %-18s %.2f× the exchanges/s; CPU per exchange %.2f× (at %d/s both)\n",
				ra.Run, ra.Versus, ra.Ratio, ra.CPURatioSameRate, ra.SameRate)
			for _, b := range ra.Budgets {
				fmt.Fprintf(w, "    at %.1f× (%.0f/s) perfdhcp, at its %.0f µs per exchange, leaves %.0f µs per exchange of the %d cores to the server; this one used %.0f\n",
					b.Times, b.Rate, b.ClientUS, b.ServerUS, r.Machine.Cores, b.UsedUS)
			}
		}
	}
	if sc := r.Scale; sc != nil {
		fmt.Fprintln(w)
		if sc.Error != "" {
			fmt.Fprintf(w, "scale: %s\n", sc.Error)
		} else {
			fmt.Fprintf(w, "scale, %d leases (%d addresses, %d prefixes), load %.1f:\n", sc.Leases, sc.Addresses, sc.Prefixes, sc.Load)
			fmt.Fprintf(w, "  RSS %.0f MiB loaded, %.0f MiB empty: %.0f bytes per lease (%.0f without file pages; database %.0f MiB)\n",
				mib(sc.RSSLoaded), mib(sc.RSSEmpty), sc.BytesPerLease, sc.AnonPerLease, mib(sc.DBBytes))
			fmt.Fprintf(w, "  restart (start → control socket answers) %.2f s, %.2f s of CPU\n", sc.RestartS, sc.RestartCPUS)
			fmt.Fprintf(w, "  hook6ctl lease list -o json %.2f s (%d leases, %.0f MiB); GET /v1/leases alone %.2f s (%.0f MiB)\n",
				sc.ListS, sc.ListedLeases, mib(sc.ListBytes), sc.APIListS, mib(sc.APIListBytes))
			fmt.Fprintf(w, "  hook6ctl lease delete ::/0 %.2f s (%d left)\n", sc.DeleteS, sc.LeasesAfterDel)
		}
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "\nhook6d CPU profile at its sustained rate: %s", p)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nSA/RR p50/p99: from each run's latency step, an extra step at its sustained offered rate (lat. step/s)")
	fmt.Fprintln(w, "with perfdhcp -x t, whose per-exchange timestamps cost perfdhcp CPU the ramp steps are spared; lat. loss %:")
	fmt.Fprintln(w, "that step's loss. RR avg/max: perfdhcp's own, in the sustained ramp step.")
	fmt.Fprintln(w, "CPU s: server process during the step (+ failover partner); CPU ms/1k: server CPU per 1000 exchanges.")
	fmt.Fprintln(w, "perfdhcp ms/1k: the load generator's CPU per 1000 exchanges; busy %: server, partner and perfdhcp CPU over")
	fmt.Fprintln(w, "all cores' time in the step (near 100: the machine, not the server alone, set the rate).")
}

// runRow is a run's line of the table, cells ended by tabs, and why its
// figures are missing after the last cell. machine is the CPU seconds
// the machine has in one step (cores × step length).
func runRow(run Run, machine float64) string {
	s := run.Sustained
	if s == nil {
		why := "no step passed"
		if run.Error != "" {
			why = run.Error
		}
		return fmt.Sprintf("%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t %s", run.Name, shortLeases(run.Leases), oneLine(why))
	}
	mark := ""
	if s.ClientBound {
		mark = "≥"
	}
	cpu := fmt.Sprintf("%.2f", s.CPU)
	if s.PeerCPU > 0 {
		cpu += fmt.Sprintf("+%.2f", s.PeerCPU)
	}
	busy := "-"
	if machine > 0 {
		busy = fmt.Sprintf("%.0f", 100*(s.CPU+s.PeerCPU+s.ClientCPU)/machine)
	}
	row := fmt.Sprintf("%s\t%s\t%s%.0f\t%d\t%.2f\t%d\t%.2f/%.1f\t%s\t%.0f\t%.0f\t%s\t%.1f\t",
		run.Name, shortLeases(run.Leases), mark, s.Rate, s.Offered, s.Loss, s.Drops,
		s.RR.AvgMs, s.RR.MaxMs, cpu, s.CPUPer1k, s.ClientCPUPer1k, busy, s.Load)
	return row + latencyCells(run.Latency)
}

// latencyCells are the table's cells of a latency step: "-" and why when
// it has no figures.
func latencyCells(l *Latency) string {
	switch {
	case l == nil:
		return "-\t-\t-\t-\t"
	case l.NotMeasured != "":
		return "-\t-\t-\t-\t " + oneLine(l.NotMeasured)
	}
	return fmt.Sprintf("%d\t%.2f\t%.2f/%.2f\t%.2f/%.2f\t", l.Offered, l.Loss, l.SA.P50ms, l.SA.P99ms, l.RR.P50ms, l.RR.P99ms)
}

func shortLeases(s string) string {
	switch s {
	case "address-only":
		return "NA"
	case "address-and-prefix":
		return "NA+PD"
	case "prefix-only":
		return "PD"
	}
	return s
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
