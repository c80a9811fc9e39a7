package lease

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// randomPrefix draws from a small space so that prefixes nest and collide.
func randomPrefix(r *rand.Rand) netip.Prefix {
	a := netip.MustParseAddr("2001:db8::").As16()
	a[6], a[7], a[15] = byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(3))
	bits := []int{40, 48, 52, 56, 60, 64, 127, 128}[r.IntN(8)]
	return netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()
}

// TestIndexMatchesBruteForce applies random puts and deletes to an index
// and to a plain map, checking every query against a scan of the map.
func TestIndexMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newIndex(0)
	model := map[netip.Prefix]Lease{}
	for step := 0; step < 12000; step++ {
		p := randomPrefix(r)
		if r.IntN(3) == 0 {
			x.remove(keyOf(p))
			delete(model, p)
		} else {
			l := genLease(r.IntN(50))
			l.Prefix, l.DUID, l.IAID = p, duidOf(r.IntN(20)), uint32(r.IntN(2))
			l.Kind = PD
			if p.Bits() == 128 && r.IntN(2) == 0 {
				l.Kind = NA
			}
			l.State = State(1 + r.IntN(4))
			rec, err := recordOf(&l)
			if err != nil {
				t.Fatal(err)
			}
			link, _ := x.nameID(rec.link)
			name, _ := x.nameID(rec.name)
			x.put(&rec, link, name)
			model[p] = l
		}
		if step%499 == 0 {
			checkIndex(t, x, model, r)
		}
	}
	checkIndex(t, x, model, r)
	if len(x.sorted.chunks) < 4 {
		t.Fatalf("only %d chunks: splits not exercised", len(x.sorted.chunks))
	}
}

func checkIndex(t *testing.T, x *index, model map[netip.Prefix]Lease, r *rand.Rand) {
	t.Helper()
	if x.n != len(model) {
		t.Fatalf("index holds %d, model %d", x.n, len(model))
	}
	var counts [PD + 1][Expired + 1]int
	var inOrder []netip.Prefix
	x.each(func(l Lease) bool { inOrder = append(inOrder, l.Prefix); return true })
	if !slices.IsSortedFunc(inOrder, func(a, b netip.Prefix) int { return a.Compare(b) }) || len(inOrder) != len(model) {
		t.Fatalf("each: %d prefixes, sorted %v", len(inOrder), slices.IsSortedFunc(inOrder, func(a, b netip.Prefix) int { return a.Compare(b) }))
	}
	for p, want := range model {
		got, ok := x.get(p)
		if !ok {
			t.Fatalf("get %s: missing", p)
		}
		if err := sameLease(got, want); err != nil {
			t.Fatal(err)
		}
		counts[want.Kind][want.State]++
	}
	if counts != x.counts {
		t.Fatalf("counts %v, want %v", x.counts, counts)
	}
	for i := 0; i < 30; i++ {
		q := randomPrefix(r)
		if r.IntN(4) == 0 {
			q = netip.PrefixFrom(q.Addr(), r.IntN(129)).Masked()
		}
		var want []netip.Prefix
		for p := range model {
			if p.Overlaps(q) {
				want = append(want, p)
			}
		}
		var got []netip.Prefix
		for _, l := range x.overlapping(q) {
			got = append(got, l.Prefix)
		}
		slices.SortFunc(want, netip.Prefix.Compare)
		slices.SortFunc(got, netip.Prefix.Compare)
		if !slices.Equal(got, want) {
			t.Fatalf("overlapping %s:\n got  %v\n want %v", q, got, want)
		}
		l := genLease(0)
		l.DUID, l.IAID = duidOf(r.IntN(20)), uint32(r.IntN(2))
		checkBinding(t, x, model, l.DUID, l.IAID)
	}
}

func checkBinding(t *testing.T, x *index, model map[netip.Prefix]Lease, duid []byte, iaid uint32) {
	t.Helper()
	var wantB, wantD, gotB, gotD []netip.Prefix
	for p, l := range model {
		if string(l.DUID) == string(duid) {
			wantD = append(wantD, p)
			if l.IAID == iaid && l.Kind == PD {
				wantB = append(wantB, p)
			}
		}
	}
	for _, l := range x.byBinding(Binding{DUID: string(duid), IAID: iaid, Kind: PD}) {
		gotB = append(gotB, l.Prefix)
	}
	for _, l := range x.byDUID(duid) {
		gotD = append(gotD, l.Prefix)
	}
	for _, s := range [][]netip.Prefix{wantB, wantD, gotB, gotD} {
		slices.SortFunc(s, netip.Prefix.Compare)
	}
	if !slices.Equal(gotB, wantB) || !slices.Equal(gotD, wantD) {
		t.Fatalf("duid %x iaid %d:\n binding got %v want %v\n duid got %v want %v", duid, iaid, gotB, wantB, gotD, wantD)
	}
}

// TestIndexReleasesDUIDs checks that deleting every lease frees the
// interned DUIDs and bindings, so churn does not grow memory.
func TestIndexReleasesDUIDs(t *testing.T) {
	x := newIndex(0)
	for round := 0; round < 3; round++ {
		for i := 0; i < 1000; i++ {
			l := genLease(i + round*1000)
			rec, _ := recordOf(&l)
			x.put(&rec, 0, 0)
		}
		for i := 0; i < 1000; i++ {
			l := genLease(i + round*1000)
			x.remove(keyOf(l.Prefix))
		}
		if x.n != 0 || len(x.duidIdx) != 0 || len(x.bindings) != 0 || len(x.sorted.chunks) != 0 {
			t.Fatalf("round %d: left n=%d duids=%d bindings=%d chunks=%d", round, x.n, len(x.duidIdx), len(x.bindings), len(x.sorted.chunks))
		}
	}
	if len(x.duids) > 1000 || len(x.recs) > 1000 {
		t.Fatalf("tables grew: %d duids, %d slots", len(x.duids), len(x.recs))
	}
}
