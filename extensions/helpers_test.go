package extensions

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/view"
	"github.com/hook6/hook6/hooks"
)

// client describes the Solicit a test client sends.
type client struct {
	mac         net.HardwareAddr
	vendorClass string
	userClass   string
	pd          bool // ask for a delegated prefix too
	relayed     bool
}

// packet builds the client's Solicit on the wire, decodes it as the
// server does and returns the request view and its environment.
func (cl client) packet(t testing.TB) (*hooks.Request, *hooks.Env) {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeSolicit
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: cl.mac}))
	m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}})
	if cl.pd {
		m.AddOption(&dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 2}})
	}
	if cl.vendorClass != "" {
		m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 4491, Data: [][]byte{[]byte(cl.vendorClass)}})
	}
	if cl.userClass != "" {
		m.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte(cl.userClass)}})
	}
	var wire dhcpv6.DHCPv6 = m
	if cl.relayed {
		r, err := dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::1"), net.ParseIP("fe80::1"))
		if err != nil {
			t.Fatal(err)
		}
		r.AddOption(dhcpv6.OptInterfaceID([]byte("port7")))
		wire = r
	}
	msg, err := dhcpv6.FromBytes(wire.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	req, err := view.FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	req.Source = netip.MustParseAddrPort("[fe80::1]:546")
	req.Interface = "eth0"
	env := hooks.NewEnv()
	view.ServerEnvNamed(env, req, "test-server")
	return req, env
}

// examplePath returns the path of an example script.
func examplePath(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "examples", "scripts", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// build builds a chain from specs, closed at the end of the test. Specs
// without a budget get a generous one: these tests assert decisions, and a
// loaded machine running the race detector can stall a call for longer
// than the default budget.
func build(t testing.TB, specs ...*config.Extension) *hooks.Chain {
	t.Helper()
	for _, s := range specs {
		if s.Budget == 0 {
			s.Budget = config.Duration(5 * time.Second)
		}
	}
	ch, err := Build(specs, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// pipeline runs the points the chain has in pipeline order, as the server
// does for one IA_NA allocated from 2001:db8:1::/64 (and IA_PD from
// 2001:db8:8000::/40 in /56s), stopping at a drop. It returns the
// response and allocations seen.
type outcome struct {
	dropped   bool
	droppedAt hooks.Point
	response  *hooks.Response
	leases    []netip.Prefix
	skipped   int
}

func pipeline(t testing.TB, ch *hooks.Chain, req *hooks.Request, env *hooks.Env) outcome {
	t.Helper()
	var out outcome
	run := func(c *hooks.Context) bool {
		if !ch.Has(c.Point) {
			return true
		}
		if err := ch.Run(c); err != nil || env.IsTrue(hooks.KeyDrop) {
			out.dropped, out.droppedAt = true, c.Point
			return false
		}
		return true
	}
	for _, p := range []hooks.Point{hooks.PostPacketDecode, hooks.PreClientLookup, hooks.PostClientLookup} {
		if !run(&hooks.Context{Point: p, Request: req, Env: env}) {
			return out
		}
	}
	for _, ia := range req.IAs {
		a := &hooks.Allocation{IA: ia, From: netip.MustParsePrefix("2001:db8:1::/64"), Length: 128}
		if ia.Type == hooks.IAPD {
			a.From, a.Length = netip.MustParsePrefix("2001:db8:8000::/40"), 56
		}
		if !run(&hooks.Context{Point: hooks.GenerateLease, Request: req, Env: env, Allocation: a}) {
			return out
		}
		if env.IsTrue(hooks.KeySkipLease) {
			out.skipped++
			_ = env.Delete(hooks.KeySkipLease)
		} else if a.Candidate.IsValid() {
			out.leases = append(out.leases, a.Candidate)
		}
	}
	out.response = &hooks.Response{MessageType: "ADVERTISE"}
	run(&hooks.Context{Point: hooks.PrePacketEncode, Request: req, Env: env, Response: out.response})
	return out
}
