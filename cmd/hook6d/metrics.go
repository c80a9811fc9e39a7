package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector exposes the engine's, the store's and the extensions' counters
// to Prometheus, read at scrape time (no second set of counters to keep).
type collector struct{ d *daemon }

var (
	descReceived = prometheus.NewDesc("hook6_packets_received_total", "DHCPv6 packets received.", nil, nil)
	descSent     = prometheus.NewDesc("hook6_packets_sent_total", "DHCPv6 packets sent.", nil, nil)
	descDropped  = prometheus.NewDesc("hook6_packets_dropped_total", "DHCPv6 packets dropped, by reason.", []string{"reason"}, nil)
	descLeases   = prometheus.NewDesc("hook6_leases", "Leases held, by kind and state.", []string{"kind", "state"}, nil)
	descExt      = prometheus.NewDesc("hook6_extension_events_total", "Extension calls and failures, by extension and event.", []string{"extension", "event"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReceived, descSent, descDropped, descLeases, descExt} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.srv.Stats()
	ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(st.Received()))
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(st.Sent()))
	for reason, n := range st.DropTotals() {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
	ls := c.d.store.Stats()
	for kind, counts := range map[string]struct{ Leased, Released, Declined, Expired int }{"na": ls.NA, "pd": ls.PD} {
		for state, n := range map[string]int{"leased": counts.Leased, "released": counts.Released, "declined": counts.Declined, "expired": counts.Expired} {
			ch <- prometheus.MustNewConstMetric(descLeases, prometheus.GaugeValue, float64(n), kind, state)
		}
	}
	for name, events := range c.d.exts.counters() {
		for event, n := range events {
			ch <- prometheus.MustNewConstMetric(descExt, prometheus.CounterValue, float64(n), name, event)
		}
	}
}

func metricsHandler(d *daemon) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d: d}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles for diagnosing a live server, on the operator's metrics
	// address only.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}
