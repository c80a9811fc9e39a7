package lease

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// base is a fixed instant so that generated leases are reproducible.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// duidOf returns a DUID-LLT (type 1, hardware type 1, time, MAC) made from n.
func duidOf(n int) []byte {
	d := []byte{0, 1, 0, 1, 0x2f, 0x1a, 0x33, 0x00, 0x52, 0x54, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(d[10:], uint32(n))
	return d
}

// naAddr spreads lease i over 2001:db8:1::/64 (i*odd is a bijection).
func naAddr(i int) netip.Prefix {
	a := netip.MustParseAddr("2001:db8:1::").As16()
	binary.BigEndian.PutUint64(a[8:], uint64(i)*0x9e3779b97f4a7c15)
	return netip.PrefixFrom(netip.AddrFrom16(a), 128)
}

// pdPrefix returns the j-th /56 of 2001:db8:8000::/36, scattered.
func pdPrefix(j int) netip.Prefix {
	a := netip.MustParseAddr("2001:db8:8000::").As16()
	n := uint32(j*40503) & (1<<20 - 1) // 20 bits: /36 to /56
	a[4] |= byte(n>>16) & 0x0f
	a[5], a[6] = byte(n>>8), byte(n)
	return netip.PrefixFrom(netip.AddrFrom16(a), 56)
}

// genLease is the i-th lease of a population: every fifth is a delegated
// prefix held by the client of the next address lease.
func genLease(i int) Lease {
	l := Lease{
		Kind: NA, Prefix: naAddr(i), DUID: duidOf(i), IAID: uint32(i % 3),
		Link: "lan", PrefixName: "lan-addr", State: Leased,
		Preferred: 7 * 24 * time.Hour, Valid: 14 * 24 * time.Hour,
		Start: base.Add(time.Duration(i) * time.Second),
	}
	if i%5 == 0 {
		l.Kind, l.Prefix, l.DUID, l.PrefixName = PD, pdPrefix(i/5), duidOf(i+1), "lan-pd"
	}
	l.Expires = l.Start.Add(l.Valid)
	l.Updated = l.Start
	return l
}

func openT(t testing.TB, path string) *BoltStore {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "leases.db") }

func mustPut(t testing.TB, s *BoltStore, ls ...Lease) {
	t.Helper()
	if err := s.Put(context.Background(), ls...); err != nil {
		t.Fatal(err)
	}
}

// sameLease compares field by field, times with Equal.
func sameLease(a, b Lease) error {
	switch {
	case a.Prefix != b.Prefix, a.Kind != b.Kind, string(a.DUID) != string(b.DUID),
		a.IAID != b.IAID, a.Link != b.Link, a.PrefixName != b.PrefixName,
		a.State != b.State, a.Preferred != b.Preferred, a.Valid != b.Valid,
		!a.Start.Equal(b.Start), !a.Expires.Equal(b.Expires), !a.Updated.Equal(b.Updated):
		return fmt.Errorf("lease differs:\n got  %+v\n want %+v", a, b)
	}
	return nil
}

// prefixSet returns the prefixes of ls as a set.
func prefixSet(ls []Lease) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(ls))
	for _, l := range ls {
		m[l.Prefix] = true
	}
	return m
}
