package lease

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	zero := genLease(1)
	zero.Start, zero.Expires, zero.Updated = time.Time{}, time.Time{}, time.Time{}
	zero.DUID, zero.Link, zero.PrefixName = nil, "", ""
	long := genLease(5)
	long.DUID = []byte(strings.Repeat("d", maxDUIDLen))
	long.Link, long.PrefixName = strings.Repeat("l", maxNameLen), "p"
	long.State, long.Preferred, long.Valid = Declined, -1, 1<<62
	for _, l := range []Lease{genLease(1), genLease(10), zero, long} {
		b, err := AppendEncoded([]byte("prefix-bytes"), &l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b[len("prefix-bytes"):])
		if err != nil {
			t.Fatal(err)
		}
		if err := sameLease(got, l); err != nil {
			t.Error(err)
		}
		if !got.Start.IsZero() && got.Start.Location() == nil {
			t.Error("no location")
		}
	}
}

func TestCodecRejectsTruncatedAndAltered(t *testing.T) {
	l := genLease(10)
	b, err := AppendEncoded(nil, &l)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
	for i := range b {
		for _, bit := range []byte{1, 0x80} {
			c := append([]byte(nil), b...)
			c[i] ^= bit
			if _, err := Decode(c); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d flipped: err %v", i, err)
			}
		}
	}
	if _, err := Decode(append(append([]byte(nil), b...), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
	v2 := append([]byte(nil), b...)
	v2[0] = 2
	if _, err := Decode(v2); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("unknown version: %v", err)
	}
}

// TestCodecRejectsWellFormedNonsense re-signs records holding values the
// encoder refuses, so only the field checks can catch them.
func TestCodecRejectsWellFormedNonsense(t *testing.T) {
	l := genLease(10) // a /56
	for name, mutate := range map[string]func(r *record){
		"host bits":    func(r *record) { r.addr[15] = 1 },
		"length > 128": func(r *record) { r.bits = 129 },
		"kind":         func(r *record) { r.kind = 3 },
		"NA not /128":  func(r *record) { r.kind = NA },
		"state":        func(r *record) { r.state = 0 },
		"long DUID":    func(r *record) { r.duid = make([]byte, maxDUIDLen+1) },
	} {
		r, err := recordOf(&l)
		if err != nil {
			t.Fatal(err)
		}
		mutate(&r)
		if _, err := Decode(r.appendTo(nil)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestEncodeValidates(t *testing.T) {
	ok := genLease(10)
	for name, mutate := range map[string]func(l *Lease){
		"invalid prefix":  func(l *Lease) { l.Prefix = netip.Prefix{} },
		"IPv4":            func(l *Lease) { l.Prefix = netip.MustParsePrefix("192.0.2.0/24") },
		"host bits":       func(l *Lease) { l.Prefix = netip.MustParsePrefix("2001:db8::1/64") },
		"kind":            func(l *Lease) { l.Kind = 0 },
		"NA not /128":     func(l *Lease) { l.Kind = NA },
		"state":           func(l *Lease) { l.State = 9 },
		"DUID too long":   func(l *Lease) { l.DUID = make([]byte, maxDUIDLen+1) },
		"name too long":   func(l *Lease) { l.Link = strings.Repeat("x", maxNameLen+1) },
		"time too late":   func(l *Lease) { l.Expires = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"time too early":  func(l *Lease) { l.Start = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) },
		"updated too old": func(l *Lease) { l.Updated = time.Unix(0, zeroTimeNanos) },
	} {
		l := ok
		mutate(&l)
		if _, err := AppendEncoded(nil, &l); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, i := range []int{1, 10} {
		l := genLease(i)
		b, _ := AppendEncoded(nil, &l)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Decode(b)
		if err != nil {
			return
		}
		again, err := AppendEncoded(nil, &l)
		if err != nil {
			t.Fatalf("decoded lease does not encode: %v", err)
		}
		if string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
