package lab

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// RelayOptions configure ISC dhcrelay -6.
type RelayOptions struct {
	Lower        string     // -l: the clients' interface (its global address becomes the link-address)
	Upper        string     // -u: the interface towards the server
	Server       netip.Addr // the server's address, reached through Upper
	InterfaceID  bool       // -I: always add an Interface-ID option
	SubscriberID string     // -s: add this Subscriber-ID option
}

// StartDhcrelay runs dhcrelay -6 in ns in the foreground and returns once
// it listens on both interfaces.
func (l *Lab) StartDhcrelay(ns *Netns, o RelayOptions) *Process {
	l.t.Helper()
	args := []string{"-6", "-d", "--no-pid"}
	if o.InterfaceID {
		args = append(args, "-I")
	}
	if o.SubscriberID != "" {
		args = append(args, "-s", o.SubscriberID)
	}
	args = append(args, "-l", o.Lower, "-u", fmt.Sprintf("%s%%%s", o.Server, o.Upper))
	p := ns.Start("dhcrelay", "dhcrelay", args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	re := regexp.MustCompile(`(?s)Sending on +Socket/` + regexp.QuoteMeta(o.Upper) + `.*Sending on +Socket/` + regexp.QuoteMeta(o.Lower) +
		`|(?s)Sending on +Socket/` + regexp.QuoteMeta(o.Lower) + `.*Sending on +Socket/` + regexp.QuoteMeta(o.Upper))
	if err := p.WaitOutput(ctx, re); err != nil {
		l.t.Fatalf("lab: dhcrelay: %v", err)
	}
	return p
}
