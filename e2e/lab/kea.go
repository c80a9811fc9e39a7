package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"time"
)

// Kea6Config is what the lab needs to configure kea-dhcp6 (Debian's
// kea-dhcp6-server, the reference server benchmarks compare against).
type Kea6Config struct {
	Interfaces []string // served interfaces, "iface" or "iface/unicast-address"
	Subnets    []Kea6Subnet
	// Lifetimes in seconds; zero leaves Kea's default.
	Preferred, Valid, Renew, Rebind int
	// Threads > 0 turns on Kea's multi-threading with that many threads.
	Threads int
}

// Kea6Subnet is one subnet6 entry.
type Kea6Subnet struct {
	ID        int
	Subnet    string // e.g. 2001:db8:1::/64
	Interface string // directly attached interface; empty for relayed subnets
	Pools     []string
	PDPools   []Kea6PDPool
}

// Kea6PDPool is a prefix-delegation pool.
type Kea6PDPool struct {
	Prefix       string // e.g. 2001:db8:8000::
	PrefixLen    int
	DelegatedLen int
}

// Kea6 is a kea-dhcp6 server running in a namespace.
type Kea6 struct {
	ConfigPath string
	LeaseFile  string
	proc       *Process
}

// Process is the server process.
func (k *Kea6) Process() *Process { return k.proc }

// json renders the configuration with its files inside dir.
func (c Kea6Config) json(dir string) ([]byte, error) {
	subnets := make([]map[string]any, 0, len(c.Subnets))
	for _, s := range c.Subnets {
		pools := make([]map[string]any, 0, len(s.Pools))
		for _, p := range s.Pools {
			pools = append(pools, map[string]any{"pool": p})
		}
		pd := make([]map[string]any, 0, len(s.PDPools))
		for _, p := range s.PDPools {
			pd = append(pd, map[string]any{"prefix": p.Prefix, "prefix-len": p.PrefixLen, "delegated-len": p.DelegatedLen})
		}
		sub := map[string]any{"id": s.ID, "subnet": s.Subnet, "pools": pools, "pd-pools": pd}
		if s.Interface != "" {
			sub["interface"] = s.Interface
		}
		subnets = append(subnets, sub)
	}
	d := map[string]any{
		"interfaces-config": map[string]any{"interfaces": c.Interfaces},
		"data-directory":    dir,
		"server-id":         map[string]any{"type": "LLT", "persist": false},
		"lease-database":    map[string]any{"type": "memfile", "name": dir + "/leases6.csv", "lfc-interval": 0},
		"subnet6":           subnets,
		"loggers": []map[string]any{{
			"name": "kea-dhcp6", "severity": "INFO",
			"output_options": []map[string]any{{"output": "stdout"}},
		}},
	}
	for k, v := range map[string]int{"preferred-lifetime": c.Preferred, "valid-lifetime": c.Valid, "renew-timer": c.Renew, "rebind-timer": c.Rebind} {
		if v > 0 {
			d[k] = v
		}
	}
	mt := map[string]any{"enable-multi-threading": c.Threads > 0}
	if c.Threads > 0 {
		mt["thread-pool-size"] = c.Threads
		mt["packet-queue-size"] = 64 * c.Threads
	}
	d["multi-threading"] = mt
	b, err := json.MarshalIndent(map[string]any{"Dhcp6": d}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render kea config: %w", err)
	}
	return b, nil
}

// StartKea6 starts kea-dhcp6 in ns with cfg and returns once it serves.
// Its pid, lock, DUID and lease files live in a private directory.
func (l *Lab) StartKea6(ns *Netns, cfg Kea6Config) *Kea6 {
	l.t.Helper()
	dir := l.MkdirTemp("kea-")
	b, err := cfg.json(dir)
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	k := &Kea6{ConfigPath: dir + "/kea-dhcp6.json", LeaseFile: dir + "/leases6.csv"}
	if err := os.WriteFile(k.ConfigPath, b, 0o644); err != nil {
		l.t.Fatalf("lab: write kea config: %v", err)
	}
	cmd := ns.Command(context.Background(), "kea-dhcp6", "-c", k.ConfigPath)
	cmd.Env = append(cmd.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	p, err := ns.StartCmd("kea-dhcp6", cmd)
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	k.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, regexp.MustCompile(`DHCP6_STARTED`)); err != nil {
		l.t.Fatalf("lab: kea-dhcp6: %v", err)
	}
	return k
}
