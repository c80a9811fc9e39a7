package labbench

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

func TestGenerateWritesTheDatabaseHook6Loads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases.db")
	now := time.Now().Truncate(time.Second)
	p := Population{
		Addresses: 1500, Prefixes: 700, Link: "lan", AddrName: "lan-addr", PDName: "lan-pd",
		AddrPool: netip.MustParsePrefix("2001:db8:1::/64"), PDPool: netip.MustParsePrefix("2001:db8:8000::/36"),
		PDLen: 56, Valid: time.Hour,
	}
	n, err := Generate(context.Background(), path, p, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2200 {
		t.Fatalf("generated %d leases, want 2200", n)
	}
	s, err := lease.Open(path, lease.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kinds := map[lease.Kind]int{}
	duids := map[string]bool{}
	s.Range(func(l lease.Lease) bool {
		kinds[l.Kind]++
		duids[string(l.DUID)] = true
		switch {
		case l.Kind == lease.NA && (l.Prefix.Bits() != 128 || !p.AddrPool.Contains(l.Prefix.Addr()) || l.PrefixName != "lan-addr"):
			t.Errorf("address lease %+v outside its pool", l)
		case l.Kind == lease.PD && (l.Prefix.Bits() != 56 || !p.PDPool.Contains(l.Prefix.Addr()) || l.PrefixName != "lan-pd"):
			t.Errorf("prefix lease %+v outside its pool", l)
		}
		if l.Link != "lan" || l.State != lease.Leased || !l.Active(now) || !l.Expires.Equal(now.Add(time.Hour)) {
			t.Errorf("lease %+v: want leased on lan until %v", l, now.Add(time.Hour))
		}
		return true
	})
	if kinds[lease.NA] != 1500 || kinds[lease.PD] != 700 || len(duids) != 2200 {
		t.Errorf("%d addresses, %d prefixes, %d clients; want 1500, 700, 2200", kinds[lease.NA], kinds[lease.PD], len(duids))
	}
}

func TestGenerateRefusesPrefixesThatDoNotFit(t *testing.T) {
	p := Population{Prefixes: 257, PDPool: netip.MustParsePrefix("2001:db8:8000::/48"), PDLen: 56}
	if _, err := Generate(context.Background(), filepath.Join(t.TempDir(), "l.db"), p, time.Now()); err == nil {
		t.Fatal("257 /56s in a /48 were accepted")
	}
}
