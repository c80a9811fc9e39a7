package e2e

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// A dhclient restarted with a lease file Confirms its address: on-link is
// answered Success and the client keeps it; an address of another prefix
// is answered NotOnLink and the client solicits a new one.
func TestDhclientConfirm(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	mode := lab.DhclientMode{NA: true}
	dh.Start(mode)
	addr, _, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if err := dh.Process().Kill(); err != nil {
		t.Fatal(err)
	}

	n := len(dh.Events())
	p := dh.Start(mode)
	if err := p.WaitOutput(ctx, regexp.MustCompile(`Forming Confirm`)); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput(ctx, regexp.MustCompile(`message status code Success`)); err != nil {
		t.Fatal(err)
	}
	kept, _, err := dh.WaitAddress(ctx, n, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if kept != addr {
		t.Errorf("after Confirm the client holds %v, want %v", kept, addr)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}

	offLink := netip.MustParseAddr("2001:db8:99::1")
	if err := dh.RewriteLeaseAddresses(addr, offLink); err != nil {
		t.Fatal(err)
	}
	n = len(dh.Events())
	p = dh.Start(mode)
	if err := p.WaitOutput(ctx, regexp.MustCompile(`message status code NotOnLink`)); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := dh.WaitAddress(ctx, n, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if !lanRange.Contains(fresh) {
		t.Errorf("after NotOnLink the client bound %v, want an address inside %v", fresh, lanRange)
	}
}

// Confirm on the wire: Success for an on-link address (whether leased or
// not), NotOnLink as soon as one address is off the link, and no answer
// when the Confirm holds no address to judge.
func TestConfirmStatusCodes(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	c := x.cli.Client6(cliIf)

	cases := []struct {
		name  string
		addrs []string
		want  iana.StatusCode
	}{
		{"on-link", []string{"2001:db8:1::1234"}, iana.StatusSuccess},
		{"off-link", []string{"2001:db8:99::1"}, iana.StatusNotOnLink},
		{"one of two off-link", []string{"2001:db8:1::1234", "2001:db8:99::1"}, iana.StatusNotOnLink},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := confirm(t, c, tc.addrs...)
			r, err := c.Exchange(timeoutCtx(ctx, 5*time.Second), m)
			if err != nil {
				t.Fatal(err)
			}
			if r.MessageType != dhcpv6.MessageTypeReply {
				t.Fatalf("answer %s, want Reply", r.MessageType)
			}
			st := r.Options.Status()
			if st == nil || st.StatusCode != tc.want {
				t.Fatalf("status %v, want %v", st, tc.want)
			}
		})
	}
	t.Run("no address", func(t *testing.T) {
		m := confirm(t, c)
		r, err := c.Exchange(timeoutCtx(ctx, 3*time.Second), m)
		if err == nil {
			t.Fatalf("answered %s to a Confirm with nothing to judge; want silence", r.Summary())
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	})
}

// confirm builds a Confirm with one IA_NA holding addrs.
func confirm(t *testing.T, c *lab.Client6, addrs ...string) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage(dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: c.HardwareAddr()}))
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeConfirm
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
	for _, a := range addrs {
		ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: netip.MustParseAddr(a).AsSlice()})
	}
	m.AddOption(ia)
	return m
}

func timeoutCtx(parent context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(parent, d)
	go func() { <-ctx.Done(); cancel() }()
	return ctx
}
