package e2e

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Malformed, truncated, misdirected and invalid packets sent to port 547
// are counted as drops by reason, and the server keeps answering a real
// client, also after a burst of random bytes.
func TestBadInputIsCountedAndDropped(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	c := x.cli.Client6(cliIf)
	before := stats(t, x.d)

	solicit, err := dhcpv6.NewSolicit(c.HardwareAddr())
	if err != nil {
		t.Fatal(err)
	}
	valid := solicit.ToBytes()
	noClientID := solicitWithout(t, c, dhcpv6.OptionClientID)
	advertise := append([]byte{byte(dhcpv6.MessageTypeAdvertise)}, valid[1:]...)
	unknownType := append([]byte{200}, valid[1:]...)

	malformed := map[string][]byte{
		"one byte":                  {byte(dhcpv6.MessageTypeSolicit)},
		"truncated header":          valid[:3],
		"option longer than data":   append(append([]byte{}, valid[:4]...), 0, 1, 0, 200, 1, 2),
		"truncated option header":   append(append([]byte{}, valid[:4]...), 0, 1, 0),
		"truncated relay-forw":      append([]byte{byte(dhcpv6.MessageTypeRelayForward), 0}, make([]byte, 8)...),
		"relay-forw, bad relay-msg": relayForw(0, []byte{0, 9, 0, 40, 1, 2, 3}),
	}
	for name, b := range malformed {
		if err := c.SendRaw(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	others := map[string][]byte{
		"advertise to a server":     advertise,
		"unknown message type":      unknownType,
		"solicit without client id": noClientID,
		"40 relay layers":           nestRelays(valid, 40),
	}
	for name, b := range others {
		if err := c.SendRaw(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	after := waitStats(t, x.d, func(s lab.Stats) bool {
		return s["packets.dropped"]-before["packets.dropped"] >= float64(len(malformed)+len(others))
	})
	delta := func(k string) float64 { return after[k] - before[k] }
	if got := delta("packets.dropped-by.malformed"); got < float64(len(malformed)) {
		t.Errorf("malformed drops +%v, want at least +%d", got, len(malformed))
	}
	for _, k := range []string{"not-for-server", "unknown-type", "invalid", "hop-limit"} {
		if delta("packets.dropped-by."+k) < 1 {
			t.Errorf("drops for %s +%v, want at least +1", k, delta("packets.dropped-by."+k))
		}
	}

	// A burst of random datagrams, then a real exchange.
	rng := rand.New(rand.NewPCG(2, 6))
	const burst = 2000
	for i := 0; i < burst; i++ {
		b := make([]byte, 1+rng.IntN(600))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[0] = byte(1 + rng.IntN(13)) // mostly client and relay message types
		if err := c.SendRaw(b); err != nil {
			t.Fatal(err)
		}
	}
	adv, err := c.Solicit(ctx, true)
	if err != nil {
		t.Fatalf("no Advertise after bad input: %v", err)
	}
	if adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.Options.OneIANA() == nil || adv.Options.OneIAPD() == nil {
		t.Fatalf("answer after bad input: %s", adv.Summary())
	}
	if x.d.Process().Exited() {
		t.Fatalf("hook6d exited: %v", x.d.Process().Err())
	}
	final := stats(t, x.d)
	if got := final["packets.received"] - before["packets.received"]; got < burst {
		t.Errorf("received +%v packets, want at least the %d of the burst", got, burst)
	}
}

func stats(t *testing.T, d *lab.Hook6d) lab.Stats {
	t.Helper()
	ctx := timeout(t, 10*time.Second)
	s, err := d.Ctl().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitStats polls the stats until ok accepts them (5s at most).
func waitStats(t *testing.T, d *lab.Hook6d, ok func(lab.Stats) bool) lab.Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := stats(t, d)
		if ok(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// solicitWithout is a valid Solicit of c less the option code.
func solicitWithout(t *testing.T, c *lab.Client6, code dhcpv6.OptionCode) []byte {
	t.Helper()
	m, err := dhcpv6.NewSolicit(c.HardwareAddr())
	if err != nil {
		t.Fatal(err)
	}
	m.Options.Del(code)
	return m.ToBytes()
}

// relayForw wraps options in a Relay-forw header (link-address and
// peer-address left unspecified).
func relayForw(hops byte, options []byte) []byte {
	b := []byte{byte(dhcpv6.MessageTypeRelayForward), hops}
	b = append(b, make([]byte, 32)...)
	return append(b, options...)
}

// nestRelays wraps msg in n Relay-forw layers.
func nestRelays(msg []byte, n int) []byte {
	for i := 0; i < n; i++ {
		opt := make([]byte, 4, 4+len(msg))
		binary.BigEndian.PutUint16(opt, uint16(dhcpv6.OptionRelayMsg))
		binary.BigEndian.PutUint16(opt[2:], uint16(len(msg)))
		msg = relayForw(byte(n-1-i), append(opt, msg...))
	}
	return msg
}
