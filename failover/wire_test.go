package failover

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

func TestAbsoluteTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if got := ToAbs(time.Date(2000, 1, 1, 0, 1, 0, 0, time.UTC)); got != 60 {
		t.Fatalf("ToAbs = %d, want 60", got)
	}
	for _, d := range []time.Duration{0, time.Hour, -time.Hour, 40 * 365 * 24 * time.Hour} {
		want := now.Add(d)
		if got := FromAbs(ToAbs(want), now); !got.Equal(want) {
			t.Errorf("round trip of now%+v: %v", d, got)
		}
	}
	// Modulo 2^32: in 2140 a small value stands for a time after the wrap.
	late := time.Date(2140, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := FromAbs(ToAbs(late), late.Add(-time.Hour)); !got.Equal(late) {
		t.Errorf("after the 2^32 wrap: %v, want %v", got, late)
	}
}

func TestMessageFraming(t *testing.T) {
	m := &Message{Type: MsgBndUpd, TxID: 0xabcdef, SentTime: 12345,
		Options: OptionList{OptU32(OptMCLT, 3600), {Code: OptRelationshipName, Data: []byte("pair-1")}}}
	b, err := m.AppendFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 26, 24, 0xab, 0xcd, 0xef, 0, 0, 0x30, 0x39, 0, 122, 0, 4, 0, 0, 0x0e, 0x10, 0, 130, 0, 6}
	if !bytes.Equal(b[:len(want)], want) || string(b[len(want):]) != "pair-1" {
		t.Fatalf("frame % x", b)
	}
	got, err := ReadMessage(bufio.NewReader(bytes.NewReader(b)))
	if err != nil || got.Type != MsgBndUpd || got.TxID != 0xabcdef || got.SentTime != 12345 {
		t.Fatalf("decoded %v %v", got, err)
	}
	if v, _ := got.Options.U32(OptMCLT); v != 3600 {
		t.Fatalf("MCLT %d", v)
	}
	// STARTTLS and its REPLY have no sent-time (RFC 7653 framing).
	st, _ := (&Message{Type: MsgStartTLS, TxID: 1}).AppendFrame(nil)
	if !bytes.Equal(st, []byte{0, 4, 23, 0, 0, 1}) {
		t.Fatalf("STARTTLS frame % x", st)
	}
	big := &Message{Type: MsgContact, Options: OptionList{{Code: 1, Data: make([]byte, MaxMessage)}}}
	if _, err := big.AppendFrame(nil); err == nil {
		t.Fatal("a message over 65535 bytes was framed")
	}
	for _, bad := range [][]byte{{24, 0, 0}, {24, 0, 0, 1, 0, 0}, {35, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 9, 1}} {
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(% x) = %v", bad, err)
		}
	}
}

// A lease survives BNDUPD encoding and decoding with the §7.4 content.
func TestBindingRoundTrip(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	l := lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:8000:100::/56"), Kind: lease.PD, DUID: clientDUID(9),
		IAID: 7, Link: "lan", PrefixName: "lan-pd", State: lease.Leased, Preferred: time.Hour, Valid: 2 * time.Hour,
		Start: now.Add(-time.Minute), Expires: now.Add(-time.Minute + 2*time.Hour), Updated: now.Add(-time.Minute)}
	pl := now.Add(3 * time.Hour)
	b := bindingOf(&l, now, pl, time.Time{})
	opt := clientData(l.DUID, []binding{b}, now)
	duid, items, bad, msg := parseClientData(opt.Data, now)
	if bad != 0 || len(items) != 1 || !bytes.Equal(duid, l.DUID) {
		t.Fatalf("parse: %d %s %v", bad, msg, items)
	}
	got := items[0].b
	if got.Status != bsActive || !got.PartnerLifetime.Equal(pl) || !got.CLT.Equal(l.Updated) || got.IAID != 7 ||
		got.Prefix != l.Prefix || got.Kind != lease.PD || !got.StateExpires.Equal(l.Expires) {
		t.Fatalf("binding %+v", got)
	}
	back, keep := got.leaseOf("lan", "lan-pd")
	if !keep || back.State != lease.Leased || !back.Expires.Equal(l.Expires) || !back.Start.Equal(l.Start) ||
		back.Valid != l.Valid || back.Preferred != l.Preferred || !back.Updated.Equal(l.Updated) {
		t.Fatalf("lease %+v, want %+v", back, l)
	}
	// Released and expired carry no timed items (§7.4 "*").
	l.State, l.Expires = lease.Released, now
	b = bindingOf(&l, now, pl, pl)
	in := b.leaseOptions(now)
	for _, code := range []uint16{OptPartnerLifetime, OptStateExpirationTime, OptExpirationTime} {
		if _, ok := in.Get(code); ok {
			t.Errorf("RELEASED binding carries option %d", code)
		}
	}
	if _, keep := b.leaseOf("lan", "lan-pd"); !keep {
		t.Error("a released binding is kept as a released lease")
	}
	l.State = lease.Expired
	if b = bindingOf(&l, now, pl, pl); b.Status != bsExpired {
		t.Fatalf("status %d", b.Status)
	}
	if _, keep := b.leaseOf("lan", "lan-pd"); keep {
		t.Error("an expired binding must remove the lease")
	}
	// Missing pieces are MissingBindingInformation.
	if _, _, bad, _ := parseClientData(OptionList{OptTime(OptLQBaseTime, now)}.Encode(), now); bad != StatusMissingBindingInformation {
		t.Errorf("no client id: %d", bad)
	}
}

func TestBindingReply(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	b := binding{Prefix: netip.MustParsePrefix("2001:db8:1::5/128"), Kind: lease.NA, IAID: 1, Status: bsActive,
		PartnerLifetime: now.Add(time.Hour), StateExpires: now.Add(time.Hour)}
	b2 := b
	b2.Prefix = netip.MustParsePrefix("2001:db8:1::7/128")
	opt := replyClientData(clientDUID(1), []replyItem{{b: b}, {b: b2, status: StatusAddressInUse, msg: "taken"}}, 0, "")
	items, whole, _, err := parseReply(&Message{Type: MsgBndReply, Options: OptionList{opt}}, now)
	if err != nil || whole != 0 || len(items) != 2 {
		t.Fatalf("%v %d %v", items, whole, err)
	}
	if items[0].status != 0 || !items[0].lifetimeAck.Equal(b.PartnerLifetime) || items[1].status != StatusAddressInUse {
		t.Fatalf("items %+v", items)
	}
	opt = replyClientData(clientDUID(1), nil, StatusMissingBindingInformation, "what")
	if _, whole, _, _ = parseReply(&Message{Type: MsgBndReply, Options: OptionList{opt}}, now); whole != StatusMissingBindingInformation {
		t.Fatalf("whole rejection %d", whole)
	}
}
