//go:build ignore

// duid-table.go gives leases from a table of client DUIDs: the operator's
// list of which client gets which address and delegated prefix.
//
// Points: generate-lease, pre-packet-encode.
//
// init-args:
//
//	unknown   what to do for a client not in the table: "allocate" (default:
//	          the next allocation algorithms choose) or "drop" (no lease, and
//	          the message is dropped at pre-packet-encode)
//	DUID      every other init-arg is a client DUID in hex (colons allowed),
//	          its value the client's leases, comma-separated: an address for
//	          IA_NA, a prefix for IA_PD, e.g.
//	          "00:03:00:01:02:00:00:aa:bb:cc": "2001:db8:1::100, 2001:db8:8000:100::/56"
//
// generate-lease may not drop, so an unknown client gets skip-lease plus
// the flag duid-table.unknown, which pre-packet-encode turns into drop.
package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hook6/hook6/hooks"
)

const flag = "duid-table.unknown"

var (
	table       = map[string][]netip.Prefix{}
	dropUnknown bool
)

func Init(args map[string]string) error {
	for k, v := range args {
		if k == "unknown" {
			switch v {
			case "allocate":
			case "drop":
				dropUnknown = true
			default:
				return fmt.Errorf("init-arg unknown %q: want allocate or drop", v)
			}
			continue
		}
		duid := strings.ToLower(strings.ReplaceAll(k, ":", ""))
		for _, s := range strings.Split(v, ",") {
			l, err := parseLease(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("DUID %s: %v", k, err)
			}
			table[duid] = append(table[duid], l)
		}
	}
	return nil
}

func parseLease(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, 128), nil
}

func GenerateLease(c *hooks.Context) error {
	leases, ok := table[c.Env.Value(hooks.KeyClientDUID)]
	if !ok {
		if dropUnknown {
			if err := c.Env.Set(flag, "true"); err != nil {
				return err
			}
			return c.SkipLease()
		}
		return nil
	}
	a := c.Allocation
	for _, l := range leases {
		if l.Bits() == a.Length && a.From.Contains(l.Addr()) {
			return c.SetLease(l)
		}
	}
	return nil
}

func PrePacketEncode(c *hooks.Context) error {
	if c.Env.IsTrue(flag) {
		return c.Drop()
	}
	return nil
}
