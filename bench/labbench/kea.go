package labbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// KeaConfig is the reference server's setup: kea-dhcp6 multi-threaded,
// memfile with persistence (its best single-box setup), one subnet served
// on one interface with an address pool and a PD pool.
type KeaConfig struct {
	Interface  string
	Subnet     string // the /64, also the whole address pool
	PDPrefix   string // e.g. 2001:db8:8000::/40
	PDLen      int    // delegated length
	Preferred  time.Duration
	Valid      time.Duration
	Threads    int // thread-pool-size; 0 turns multi-threading off
	QueueSize  int // packet-queue-size; 0 leaves Kea's default (64)
	LogWarning bool
	// HA, when set, makes this server one of a Kea HA hot-standby pair
	// (libdhcp_ha with libdhcp_lease_cmds, peers talking over HTTP on the
	// dedicated listener multi-threaded Kea offers).
	HA *KeaHA
}

// KeaHA is one side of a Kea hot-standby pair.
type KeaHA struct {
	ThisServer      string // "primary" or "standby"
	PrimaryURL      string // e.g. http://[2001:db8:f::1]:8001/
	StandbyURL      string
	HooksDir        string // where libdhcp_ha.so and libdhcp_lease_cmds.so are
	ListenerThreads int
}

func (h *KeaHA) hooks() []map[string]any {
	threads := max(h.ListenerThreads, 1)
	return []map[string]any{
		{"library": filepath.Join(h.HooksDir, "libdhcp_lease_cmds.so")},
		{"library": filepath.Join(h.HooksDir, "libdhcp_ha.so"), "parameters": map[string]any{
			"high-availability": []map[string]any{{
				"this-server-name": h.ThisServer, "mode": "hot-standby",
				"heartbeat-delay": 10000, "max-response-delay": 60000, "max-ack-delay": 5000, "max-unacked-clients": 0,
				"multi-threading": map[string]any{"enable-multi-threading": true, "http-dedicated-listener": true,
					"http-listener-threads": threads, "http-client-threads": threads},
				"peers": []map[string]any{
					{"name": "primary", "url": h.PrimaryURL, "role": "primary", "auto-failover": true},
					{"name": "standby", "url": h.StandbyURL, "role": "standby", "auto-failover": true},
				},
			}},
		}},
	}
}

// JSON renders the kea-dhcp6 configuration with its files inside dir.
func (c KeaConfig) JSON(dir string) ([]byte, error) {
	pd, err := netip.ParsePrefix(c.PDPrefix)
	if err != nil {
		return nil, fmt.Errorf("kea pd-pool: %w", err)
	}
	pref, valid := int(c.Preferred/time.Second), int(c.Valid/time.Second)
	mt := map[string]any{"enable-multi-threading": c.Threads > 0}
	if c.Threads > 0 {
		mt["thread-pool-size"] = c.Threads
		if c.QueueSize > 0 {
			mt["packet-queue-size"] = c.QueueSize
		}
	}
	severity := "INFO"
	if c.LogWarning {
		severity = "WARN"
	}
	d := map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{c.Interface}},
		"data-directory":    dir,
		"server-id":         map[string]any{"type": "LLT", "persist": false},
		"lease-database": map[string]any{
			"type": "memfile", "persist": true,
			"name": filepath.Join(dir, "leases6.csv"), "lfc-interval": 0,
		},
		"preferred-lifetime": pref,
		"valid-lifetime":     valid,
		"renew-timer":        pref / 2,
		"rebind-timer":       pref * 4 / 5,
		"multi-threading":    mt,
		"subnet6": []map[string]any{{
			"id": 1, "subnet": c.Subnet, "interface": c.Interface,
			"pools": []map[string]any{{"pool": c.Subnet}},
			"pd-pools": []map[string]any{{
				"prefix": pd.Addr().String(), "prefix-len": pd.Bits(), "delegated-len": c.PDLen,
			}},
		}},
		"hooks-libraries": c.haHooks(),
		"loggers":         c.loggers(severity),
	}
	b, err := json.MarshalIndent(map[string]any{"Dhcp6": d}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render kea config: %w", err)
	}
	return b, nil
}

func (c KeaConfig) loggers(severity string) []map[string]any {
	out := []map[string]any{{"name": "kea-dhcp6", "severity": severity,
		"output_options": []map[string]any{{"output": "stdout"}}}}
	if c.HA != nil {
		// The HA state transitions (INFO) tell when the pair serves.
		out = append(out, map[string]any{"name": "kea-dhcp6.ha-hooks", "severity": "INFO",
			"output_options": []map[string]any{{"output": "stdout"}}})
	}
	return out
}

func (c KeaConfig) haHooks() []map[string]any {
	if c.HA == nil {
		return []map[string]any{}
	}
	return c.HA.hooks()
}

// Kea is a running kea-dhcp6.
type Kea struct {
	Dir  string
	Proc *lab.Process
}

// StartKea writes cfg into a fresh directory of the lab and starts
// kea-dhcp6 in ns; it returns once Kea logged that it serves. Kea's pid
// and lock files go to the same directory.
func StartKea(l *lab.Lab, ns *lab.Netns, cfg KeaConfig) (*Kea, error) {
	dir := l.MkdirTemp("kea-")
	b, err := cfg.JSON(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "kea-dhcp6.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, fmt.Errorf("write kea config: %w", err)
	}
	cmd := ns.Command(context.Background(), "kea-dhcp6", "-c", path)
	cmd.Env = append(cmd.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	p, err := ns.StartCmd("kea-dhcp6", cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// At WARN Kea prints nothing when it starts; then wait until its
	// socket is bound, seen as the process having opened UDP port 547.
	if cfg.LogWarning {
		if err := waitUDPPort(ctx, p, 547); err != nil {
			return nil, fmt.Errorf("kea-dhcp6: %w", err)
		}
	} else if err := p.WaitOutput(ctx, regexp.MustCompile(`DHCP6_STARTED`)); err != nil {
		return nil, fmt.Errorf("kea-dhcp6: %w", err)
	}
	return &Kea{Dir: dir, Proc: p}, nil
}
