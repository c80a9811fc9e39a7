// Command remoteid-prefix is a hook6 plugin that gives each relay port its
// own lease: at generate-lease it looks up the innermost relay's remote-id
// (option 37) in a table from its init-args and gives the address or
// delegated prefix found there.
//
// init-args:
//
//	"0000000a0b0c": 2001:db8:8000:100::/56    # remote-id in hex → lease
//	"text:port-1/1/1": 2001:db8:8000:200::/56, 2001:db8:1::200
//	on-miss: continue                         # or "skip": no lease for unknown remote-ids
//
// A key is the remote-id without its enterprise number, in hex or, after
// "text:", as text. A value is one or more leases (addresses or prefixes,
// comma-separated); for each IA the one that fits the prefix being
// allocated from is given. An IA nothing fits is left to the next
// allocation algorithm.
package main

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin"
)

// KeyLease is the env key set to the lease given, for later points and logs.
const KeyLease = "remoteid-prefix.lease"

func main() {
	t := &table{}
	plugin.Serve(plugin.Handlers{Init: t.Init, GenerateLease: t.GenerateLease})
}

// table maps remote-ids to leases. Init fills it once per start, before
// any call; calls only read it.
type table struct {
	leases map[string][]netip.Prefix // raw remote-id → leases
	skip   bool                      // on-miss: skip
}

// Init reads the table from the init-args.
func (t *table) Init(args map[string]string) error {
	t.leases = make(map[string][]netip.Prefix, len(args))
	for k, v := range args {
		if k == "on-miss" {
			switch v {
			case "continue", "skip":
				t.skip = v == "skip"
			default:
				return fmt.Errorf("on-miss %q: want continue or skip", v)
			}
			continue
		}
		id, err := parseRemoteID(k)
		if err != nil {
			return err
		}
		ps, err := parseLeases(v)
		if err != nil {
			return fmt.Errorf("remote-id %q: %w", k, err)
		}
		t.leases[string(id)] = ps
	}
	if len(t.leases) == 0 {
		return fmt.Errorf("no remote-ids in init-args")
	}
	return nil
}

func parseRemoteID(k string) ([]byte, error) {
	if text, ok := strings.CutPrefix(k, "text:"); ok && text != "" {
		return []byte(text), nil
	}
	id, err := hex.DecodeString(strings.ReplaceAll(k, ":", ""))
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("remote-id %q: want hex digits or text:TEXT", k)
	}
	return id, nil
}

func parseLeases(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither an address nor a prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("%v has host bits set", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// GenerateLease gives the lease of the innermost relay's remote-id.
func (t *table) GenerateLease(c *hooks.Context) error {
	id := remoteID(c.Request)
	if id == nil {
		return nil // not relayed, or the relay sent no remote-id
	}
	leases, ok := t.leases[string(id)]
	if !ok {
		if t.skip {
			c.Log.Info("unknown remote-id: no lease", "remote-id", hex.EncodeToString(id))
			return c.SkipLease()
		}
		return nil
	}
	a := c.Allocation
	for _, p := range leases {
		if p.Bits() == a.Length && a.From.Contains(p.Addr()) {
			if err := c.SetLease(p); err != nil {
				return err
			}
			return c.Env.Set(KeyLease, p.String())
		}
	}
	return nil // nothing for this IA's prefix: leave it to the next algorithm
}

// remoteID is the innermost relay's remote-id, nil when there is none.
func remoteID(r *hooks.Request) []byte {
	if r == nil || len(r.Relays) == 0 {
		return nil
	}
	return r.Relays[len(r.Relays)-1].RemoteID
}
