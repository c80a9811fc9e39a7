package failover

import (
	"net"
	"testing"
	"time"
)

// The pair works over mutual TLS with certificates from one CA.
func TestPairOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "pair-ca")
	p := newPair(t, pairOpts{noSync: true,
		tlsPri: ca.issue(t, dir, "primary", ca), tlsSec: ca.issue(t, dir, "secondary", ca)})
	p.start()
	p.waitNormal(t, 10*time.Second)
	for c := range 5 {
		p.pri.bind(c, false)
	}
	p.waitSame(t, 5*time.Second)
	if !p.pri.ep.Status().TLS {
		t.Error("status does not say TLS")
	}
}

// A primary whose certificate another CA signed is refused, and so is a
// primary that offers no TLS to a secondary that requires it.
func TestTLSRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, dir, "pair-ca"), newCA(t, dir, "other-ca")
	for name, o := range map[string]pairOpts{
		"foreign certificate": {tlsPri: other.issue(t, dir, "intruder", ca), tlsSec: ca.issue(t, dir, "secondary", ca)},
		"secondary unknown":   {tlsPri: ca.issue(t, dir, "primary", ca), tlsSec: other.issue(t, dir, "fake-secondary", other)},
	} {
		t.Run(name, func(t *testing.T) {
			o.noSync = true
			p := newPair(t, o)
			p.start()
			time.Sleep(1500 * time.Millisecond)
			if p.sec.ep.Status().Communications == "ok" || p.pri.ep.Status().Communications == "ok" {
				t.Fatal("the servers talk despite a certificate from a foreign CA")
			}
		})
	}
	t.Run("plain TCP to a TLS secondary", func(t *testing.T) {
		p := newPair(t, pairOpts{noSync: true, tlsPri: ca.issue(t, dir, "primary2", ca), tlsSec: ca.issue(t, dir, "secondary2", ca)})
		p.pri.cfg.TLS = nil
		p.pri.ep.cfg.TLS = nil
		p.start()
		time.Sleep(1500 * time.Millisecond)
		if p.sec.ep.Status().Communications == "ok" {
			t.Fatal("a TLS secondary accepted a plain connection")
		}
	})
}

// The secondary drops connections from any address but its primary's.
func TestUnknownPeerRefused(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.sec.ep.cfg.Peer = "192.0.2.1:647"
	p.start()
	waitFor(t, 5*time.Second, "a refused connection", func() bool {
		return p.sec.ep.Stats()["refused-connections"].(uint64) > 0
	})
	if p.pri.ep.Status().Communications == "ok" {
		t.Fatal("connected to a secondary that does not know it")
	}
}

// CONNECT with another MCLT is answered with the primary's, and a
// relationship name the secondary does not have is refused.
func TestConnectNegotiation(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.sec.ep.cfg.MCLT = time.Hour // the secondary adopts the primary's
	p.start()
	p.waitNormal(t, 10*time.Second)
	if got := p.sec.ep.MCLT(); got != p.pri.cfg.MCLT {
		t.Fatalf("secondary MCLT %s, want the primary's %s", got, p.pri.cfg.MCLT)
	}

	// A raw CONNECT for another relationship.
	nc, err := net.Dial("tcp", p.sec.cfg.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	os := p.pri.ep.connectOptions(time.Minute)
	for i := range os {
		if os[i].Code == OptRelationshipName {
			os[i].Data = []byte("other-pair")
		}
	}
	if err := writeNow(nc, &Message{Type: MsgConnect, TxID: 7, Options: os}); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	r, err := ReadMessage(newReader(nc))
	if err != nil {
		t.Fatal(err)
	}
	code, _, ok := r.Options.Status()
	if r.Type != MsgConnectReply || r.TxID != 7 || !ok || code != StatusConfigurationConflict {
		t.Fatalf("answer %s status %d", r, code)
	}
}
