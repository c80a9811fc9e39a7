package lab

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PerfOptions are the perfdhcp -6 arguments the lab uses.
type PerfOptions struct {
	Iface    string        // -l
	Rate     int           // -r: exchanges initiated per second
	Clients  int           // -R: number of simulated clients
	Duration time.Duration // -p
	Extra    []string      // further arguments, before the interface
}

// PerfResult is perfdhcp's summary.
type PerfResult struct {
	Rate      float64 // achieved 4-way exchanges per second
	Malformed int
	Exchanges map[string]PerfExchange // by "SOLICIT-ADVERTISE", "REQUEST-REPLY", ...
	Output    string
	// CPU is the CPU time (user and system) perfdhcp used: on a machine
	// it shares with the server, the load generator's share of the cores.
	CPU time.Duration
}

// PerfExchange is the summary of one exchange type.
type PerfExchange struct {
	Sent, Received, Drops, Orphans int
	RejectedLeases, NonUnique      int
	DropsRatio                     float64 // percent
	MinDelay, AvgDelay, MaxDelay   time.Duration
	StdDev                         time.Duration
}

// Perfdhcp runs perfdhcp -6 in the namespace and parses its summary.
// perfdhcp's own exit status (non-zero when packets were dropped) is not
// an error; a summary that cannot be read is.
func (n *Netns) Perfdhcp(ctx context.Context, o PerfOptions) (PerfResult, error) {
	args := []string{"-6", "-l", o.Iface}
	if o.Rate > 0 {
		args = append(args, "-r", strconv.Itoa(o.Rate))
	}
	if o.Clients > 0 {
		args = append(args, "-R", strconv.Itoa(o.Clients))
	}
	if o.Duration > 0 {
		args = append(args, "-p", strconv.Itoa(int(o.Duration.Round(time.Second)/time.Second)))
	}
	args = append(args, o.Extra...)
	cmd := n.Command(ctx, "perfdhcp", args...)
	out, runErr := cmd.CombinedOutput()
	r, err := ParsePerfdhcp(string(out))
	if err != nil {
		return r, fmt.Errorf("perfdhcp %s (exit: %v): %w", strings.Join(args, " "), runErr, err)
	}
	if ps := cmd.ProcessState; ps != nil { // ip netns exec execs perfdhcp in place
		r.CPU = ps.UserTime() + ps.SystemTime()
	}
	return r, nil
}

// ParsePerfdhcp reads perfdhcp's statistics output.
func ParsePerfdhcp(out string) (PerfResult, error) {
	r := PerfResult{Exchanges: map[string]PerfExchange{}, Output: out}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "***Statistics for:"); ok {
			cur = strings.TrimSpace(strings.TrimSuffix(name, "***"))
			r.Exchanges[cur] = PerfExchange{}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "Rate" && cur == "":
			f, _, _ := strings.Cut(v, " ")
			r.Rate, _ = strconv.ParseFloat(f, 64)
		case k == "Malformed packets":
			r.Malformed, _ = strconv.Atoi(v)
		case cur != "":
			e := r.Exchanges[cur]
			setPerfField(&e, k, v)
			r.Exchanges[cur] = e
		}
	}
	if len(r.Exchanges) == 0 {
		return r, fmt.Errorf("no statistics in perfdhcp output %q", truncate([]byte(out)))
	}
	return r, nil
}

func setPerfField(e *PerfExchange, k, v string) {
	num := func() int { n, _ := strconv.Atoi(v); return n }
	switch k {
	case "sent packets":
		e.Sent = num()
	case "received packets":
		e.Received = num()
	case "drops":
		e.Drops = num()
	case "orphans":
		e.Orphans = num()
	case "rejected leases":
		e.RejectedLeases = num()
	case "non unique addresses":
		e.NonUnique = num()
	case "drops ratio":
		e.DropsRatio, _ = strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "%")), 64)
	case "min delay":
		e.MinDelay = perfDelay(v)
	case "avg delay":
		e.AvgDelay = perfDelay(v)
	case "max delay":
		e.MaxDelay = perfDelay(v)
	case "std deviation":
		e.StdDev = perfDelay(v)
	}
}

// perfDelay reads "0.238 ms".
func perfDelay(v string) time.Duration {
	f, unit, _ := strings.Cut(v, " ")
	x, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return time.Duration(x * float64(time.Second))
	case "us":
		return time.Duration(x * float64(time.Microsecond))
	}
	return time.Duration(x * float64(time.Millisecond))
}
