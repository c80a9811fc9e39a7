package labbench

import (
	"testing"
	"time"
)

// perfdhcpOut is perfdhcp 2.2's output with -x t, shortened.
const perfdhcpOut = `Running: perfdhcp -6 -l cli0 -r 1000 -R 1000000 -p 3 -x t -W 500000
***Rate statistics***
Rate: 854.174 4-way exchanges/second, expected rate: 1000

***Malformed Packets***
Malformed packets: 0
***Statistics for: SOLICIT-ADVERTISE***
sent packets: 4
received packets: 3
drops: 1
drops ratio: 25 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.069 ms
avg delay: 1.009 ms
max delay: 2.965 ms
std deviation: 1.580 ms
collected packets: 0

***Statistics for: REQUEST-REPLY***
sent packets: 3
received packets: 2
drops: 1
drops ratio: 33.3 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.100 ms
avg delay: 0.150 ms
max delay: 0.200 ms
std deviation: 0.050 ms
collected packets: 0

***Timestamps for packets: SOLICIT-ADVERTISE***
sent / received: 000000.000075 / 000000.003040
sent / received: 000000.003119 / 000000.003188
sent / received: 000001.999990 / 000002.000980
***Timestamps for packets: REQUEST-REPLY***
sent / received: 000000.003100 / 000000.003200
sent / received: 000000.004000 / 000000.004200
`

func TestDelays(t *testing.T) {
	ds, err := Delays(perfdhcpOut)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]time.Duration{
		"SOLICIT-ADVERTISE": {2965 * time.Microsecond, 69 * time.Microsecond, 990 * time.Microsecond},
		"REQUEST-REPLY":     {100 * time.Microsecond, 200 * time.Microsecond},
	}
	for name, w := range want {
		got := ds[name]
		if len(got) != len(w) {
			t.Fatalf("%s: %d delays %v, want %v", name, len(got), got, w)
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w[i])
			}
		}
	}
}

func TestDelaysRejectsGarbage(t *testing.T) {
	_, err := Delays("***Timestamps for packets: REQUEST-REPLY***\nsent / received: 1.0 / x\n")
	if err == nil {
		t.Fatal("a bad timestamp was accepted")
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%g = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %v", got)
	}
}
