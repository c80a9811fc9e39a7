// Package labbench holds the parts of `make bench` (bench/bench_test.go)
// that do not need a lab to be tested: the reference Kea configuration,
// perfdhcp's timestamps turned into latency percentiles, the rate ramp,
// CPU time and resident memory of a server process from /proc, a lease
// database generator for the scale figures, and the results (table and
// JSON).
package labbench
