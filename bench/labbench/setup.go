package labbench

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// Pools is the address space both servers serve in the benchmark: one /64
// of addresses and one PD pool, with one lifetime for everything.
type Pools struct {
	Interface string
	Addr      netip.Prefix // e.g. 2001:db8:1::/64
	PD        netip.Prefix // e.g. 2001:db8:8000::/40
	PDLen     int          // e.g. 56
	Lifetime  time.Duration
}

// Hook6Config is hook6d's side of the comparison: the pools served on the
// interface, preferred and valid lifetimes equal (T1 and T2 default to
// 0.5 and 0.8 of preferred, as Kea's renew and rebind timers are set),
// logging at warn so the log costs nothing per packet.
func (p Pools) Hook6Config() lab.Config {
	life := durationString(p.Lifetime)
	return lab.Config{
		Server:   lab.ServerConfig{Interfaces: []string{p.Interface}},
		Log:      &lab.LogConfig{Level: "warn"},
		Policies: map[string]lab.Policy{"default": {PreferredLifetime: life, ValidLifetime: life}},
		Links:    []lab.Link{{Name: "lan", Interface: p.Interface}},
		Prefixes: []lab.Prefix{
			{Name: "lan-addr", Link: "lan", Address: p.Addr.String(), DHCPType: "dhcp"},
			{Name: "lan-pd", Link: "lan", Address: p.PD.String(), DHCPType: "prefix-delegation", PrefixLength: p.PDLen},
		},
	}
}

// KeaConfig is Kea's side: the same pools and lifetimes, multi-threaded
// with threads threads and a packet queue of queue (0: Kea's default).
func (p Pools) KeaConfig(threads, queue int) KeaConfig {
	return KeaConfig{
		Interface: p.Interface, Subnet: p.Addr.String(), PDPrefix: p.PD.String(), PDLen: p.PDLen,
		Preferred: p.Lifetime, Valid: p.Lifetime, Threads: threads, QueueSize: queue, LogWarning: true,
	}
}

// durationString writes d as hook6 reads durations ("3600s").
func durationString(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// ServerPID returns the pid of the program a lab process runs. `ip netns
// exec` execs the program in place, so it is normally the process itself;
// if an ip process is found instead, its only child is taken.
func ServerPID(p *lab.Process) (int, error) {
	pid := p.Pid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return 0, fmt.Errorf("server of %s: %w", p.Name, err)
	}
	if strings.TrimSpace(string(comm)) != "ip" {
		return pid, nil
	}
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("server of %s: %w", p.Name, err)
	}
	f := strings.Fields(string(kids))
	if len(f) != 1 {
		return 0, fmt.Errorf("server of %s: ip process %d has children %q", p.Name, pid, f)
	}
	return strconv.Atoi(f[0])
}
