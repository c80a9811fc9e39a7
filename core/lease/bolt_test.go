package lease

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestPutGetDeleteAndReopen(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	var ls []Lease
	for i := 0; i < 50; i++ {
		ls = append(ls, genLease(i))
	}
	mustPut(t, s, ls...)
	if s.Len() != 50 {
		t.Fatalf("Len %d", s.Len())
	}
	gone := []netip.Prefix{ls[3].Prefix, ls[10].Prefix, netip.MustParsePrefix("2001:db8:ffff::/48")}
	if err := s.Delete(context.Background(), gone...); err != nil {
		t.Fatal(err)
	}
	renewed := ls[7]
	renewed.Start = renewed.Start.Add(time.Hour)
	renewed.Expires = renewed.Start.Add(renewed.Valid)
	renewed.State = Released
	mustPut(t, s, renewed)
	ls[7] = renewed

	check := func(s *BoltStore) {
		t.Helper()
		if s.Len() != 48 {
			t.Fatalf("Len %d, want 48", s.Len())
		}
		for i, want := range ls {
			got, ok := s.Get(want.Prefix)
			if i == 3 || i == 10 {
				if ok {
					t.Fatalf("deleted %s still there", want.Prefix)
				}
				continue
			}
			if !ok {
				t.Fatalf("%s missing", want.Prefix)
			}
			if err := sameLease(got, want); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		s.Range(func(Lease) bool { n++; return n < 5 })
		if n != 5 {
			t.Fatalf("Range did not stop: %d", n)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path)
	defer s.Close()
	check(s)
	if s.Corrupt() != 0 {
		t.Fatalf("corrupt %d", s.Corrupt())
	}
}

func TestBindingIndexes(t *testing.T) {
	s := openT(t, tempDB(t))
	defer s.Close()
	a, b := duidOf(1), duidOf(2)
	na1 := genLease(1)
	na1.DUID, na1.IAID = a, 7
	na2 := genLease(2)
	na2.DUID, na2.IAID = a, 7
	pd := genLease(5)
	pd.DUID, pd.IAID = a, 7
	other := genLease(3)
	other.DUID, other.IAID = b, 7
	mustPut(t, s, na1, na2, pd, other)

	prefixes := func(ls []Lease) []netip.Prefix {
		var ps []netip.Prefix
		for _, l := range ls {
			ps = append(ps, l.Prefix)
		}
		slices.SortFunc(ps, netip.Prefix.Compare)
		return ps
	}
	sorted := func(ps ...netip.Prefix) []netip.Prefix {
		slices.SortFunc(ps, netip.Prefix.Compare)
		return ps
	}
	if got := prefixes(s.ByBinding(BindingOf(&na1))); !slices.Equal(got, sorted(na1.Prefix, na2.Prefix)) {
		t.Fatalf("binding NA: %v", got)
	}
	if got := prefixes(s.ByBinding(Binding{DUID: string(a), IAID: 7, Kind: PD})); !slices.Equal(got, []netip.Prefix{pd.Prefix}) {
		t.Fatalf("binding PD: %v", got)
	}
	if got := s.ByBinding(Binding{DUID: string(a), IAID: 8, Kind: NA}); len(got) != 0 {
		t.Fatalf("unknown IAID: %v", got)
	}
	if got := prefixes(s.ByDUID(a)); !slices.Equal(got, sorted(na1.Prefix, na2.Prefix, pd.Prefix)) {
		t.Fatalf("ByDUID: %v", got)
	}
	// Moving na2 to client b takes it out of a's indexes.
	na2.DUID = b
	mustPut(t, s, na2)
	if got := prefixes(s.ByBinding(BindingOf(&na1))); !slices.Equal(got, []netip.Prefix{na1.Prefix}) {
		t.Fatalf("after move, binding of a: %v", got)
	}
	if got := prefixes(s.ByDUID(b)); !slices.Equal(got, sorted(na2.Prefix, other.Prefix)) {
		t.Fatalf("after move, ByDUID b: %v", got)
	}
	if err := s.Delete(context.Background(), na1.Prefix, pd.Prefix); err != nil {
		t.Fatal(err)
	}
	if got := s.ByDUID(a); len(got) != 0 {
		t.Fatalf("a still has %v", got)
	}
	got := s.ByDUID(b)
	got[0].DUID[0] ^= 0xff // callers own what they get
	if again := s.ByDUID(b); len(again) != 2 {
		t.Fatalf("mutating a result changed the store: %v", again)
	}
}

func TestOverlapping(t *testing.T) {
	s := openT(t, tempDB(t))
	defer s.Close()
	mk := func(p string, k Kind) Lease {
		l := genLease(10)
		l.Prefix, l.Kind = netip.MustParsePrefix(p), k
		return l
	}
	mustPut(t, s,
		mk("2001:db8:8000::/40", PD), // an odd big delegation
		mk("2001:db8:9000:100::/56", PD),
		mk("2001:db8:9000:200::/56", PD),
		mk("2001:db8:9000:200::/60", PD),
		mk("2001:db8:9000:2ff::/64", PD),
		mk("2001:db8:1::5/128", NA),
	)
	cases := map[string][]string{
		"2001:db8:8000:1200::/56": {"2001:db8:8000::/40"},
		"2001:db8:9000:200::/56":  {"2001:db8:9000:200::/56", "2001:db8:9000:200::/60", "2001:db8:9000:2ff::/64"},
		"2001:db8:9000:2f0::/60":  {"2001:db8:9000:200::/56", "2001:db8:9000:2ff::/64"},
		"2001:db8:9000::/48":      {"2001:db8:9000:100::/56", "2001:db8:9000:200::/56", "2001:db8:9000:200::/60", "2001:db8:9000:2ff::/64"},
		"2001:db8:9000:300::/56":  nil,
		"2001:db8:1::/64":         {"2001:db8:1::5/128"},
		"2001:db8:1::5/128":       {"2001:db8:1::5/128"},
		"2001:db8:1::6/128":       nil,
		"::/0":                    {"2001:db8:8000::/40", "2001:db8:9000:100::/56", "2001:db8:9000:200::/56", "2001:db8:9000:200::/60", "2001:db8:9000:2ff::/64", "2001:db8:1::5/128"},
	}
	for q, want := range cases {
		var got, w []string
		for _, l := range s.Overlapping(netip.MustParsePrefix(q)) {
			got = append(got, l.Prefix.String())
		}
		w = append(w, want...)
		slices.Sort(got)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("Overlapping(%s) = %v, want %v", q, got, w)
		}
	}
	if got := s.Overlapping(netip.MustParsePrefix("10.0.0.0/8")); got != nil {
		t.Errorf("IPv4 query: %v", got)
	}
}

func TestPutValidatesAll(t *testing.T) {
	s := openT(t, tempDB(t))
	defer s.Close()
	bad := genLease(2)
	bad.Prefix = netip.MustParsePrefix("2001:db8::1/64")
	if err := s.Put(context.Background(), genLease(1), bad); err == nil {
		t.Fatal("invalid lease accepted")
	}
	if err := s.Delete(context.Background(), netip.MustParsePrefix("2001:db8::1/64")); err == nil {
		t.Fatal("non-canonical delete accepted")
	}
	if s.Len() != 0 {
		t.Fatalf("partial write: %d leases", s.Len())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, genLease(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

// TestFailedCommitLeavesMemory fails one writer's write: its changes
// reach neither disk nor memory, and the writers grouped with it still
// commit.
func TestFailedCommitLeavesMemory(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	mustPut(t, s, genLease(0))
	boom := errors.New("disk on fire")
	s.failWrite = func(ops []op) error {
		if ops[0].rec.iaid == 0xdead {
			return boom
		}
		return nil
	}
	start := s.commits.Load()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := 1; i <= 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := genLease(i)
			if i == 3 {
				l.IAID = 0xdead
			}
			errs[i-1] = s.Put(context.Background(), l)
		}()
	}
	wg.Wait()
	t.Logf("16 writers, %d commits", s.commits.Load()-start)
	for i, err := range errs {
		if i+1 == 3 {
			if !errors.Is(err, boom) {
				t.Fatalf("failing writer: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("writer %d: %v", i+1, err)
		}
	}
	if _, ok := s.Get(genLease(3).Prefix); ok {
		t.Fatal("failed Put reached memory")
	}
	before := s.Stats()
	s.failWrite = func([]op) error { return boom }
	if err := s.Delete(context.Background(), genLease(0).Prefix); !errors.Is(err, boom) {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := s.Get(genLease(0).Prefix); !ok {
		t.Fatal("failed Delete reached memory")
	}
	if s.Stats() != before || before.Leases != 16 {
		t.Fatalf("stats changed: %+v -> %+v", before, s.Stats())
	}
	s.failWrite = nil
	s.Close()

	s = openT(t, path)
	defer s.Close()
	if s.Len() != 16 {
		t.Fatalf("disk holds %d leases, want 16", s.Len())
	}
	if _, ok := s.Get(genLease(3).Prefix); ok {
		t.Fatal("failed Put reached disk")
	}
	mustPut(t, s, genLease(3)) // the store still works
	if _, ok := s.Get(genLease(3).Prefix); !ok {
		t.Fatal("Put after failure lost")
	}
}

func TestWriteAfterClose(t *testing.T) {
	s := openT(t, tempDB(t))
	mustPut(t, s, genLease(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), genLease(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, ok := s.Get(genLease(1).Prefix); !ok {
		t.Fatal("reads after Close should still answer")
	}
}

func TestExpiredAndStats(t *testing.T) {
	s := openT(t, tempDB(t))
	defer s.Close()
	var ls []Lease
	for i := 0; i < 20; i++ {
		l := genLease(i)
		l.State = State(1 + i%4)
		l.Expires = base.Add(time.Duration(i) * time.Minute)
		ls = append(ls, l)
	}
	mustPut(t, s, ls...)
	got := prefixSet(s.Expired(base.Add(5*time.Minute + time.Second)))
	if len(got) != 6 {
		t.Fatalf("expired %d leases, want 6", len(got))
	}
	for i := 0; i <= 5; i++ {
		if !got[ls[i].Prefix] {
			t.Fatalf("lease %d not expired", i)
		}
	}
	if n := len(s.Expired(base.Add(5 * time.Minute))); n != 5 {
		t.Fatalf("Expires == now counted as expired: %d", n)
	}
	st := s.Stats()
	// i%5==0 are PD: i = 0,5,10,15 with states 1,2,3,4.
	want := Stats{Leases: 20, NA: StateCounts{4, 4, 4, 4}, PD: StateCounts{1, 1, 1, 1}}
	if st != want {
		t.Fatalf("Stats %+v, want %+v", st, want)
	}
}

// TestCorruptRecordSkipped damages one record on disk: Open skips and
// counts it, keeps the rest, and a later Put of that prefix repairs it.
func TestCorruptRecordSkipped(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	for i := 0; i < 10; i++ {
		mustPut(t, s, genLease(i))
	}
	s.Close()
	victim := genLease(4)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(leasesBucket)
		k := keyOf(victim.Prefix)
		v := append([]byte(nil), b.Get(k[:])...)
		if err := b.Put(k[:], v[:len(v)-3]); err != nil {
			return err
		}
		return b.Put([]byte("junk"), []byte{1, 2, 3})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = openT(t, path)
	if s.Corrupt() != 2 || s.Len() != 9 || s.Stats().Corrupt != 2 {
		t.Fatalf("corrupt %d, len %d", s.Corrupt(), s.Len())
	}
	if _, ok := s.Get(victim.Prefix); ok {
		t.Fatal("corrupt record loaded")
	}
	mustPut(t, s, victim)
	s.Close()
	s = openT(t, path)
	defer s.Close()
	if s.Corrupt() != 1 || s.Len() != 10 {
		t.Fatalf("after repair: corrupt %d, len %d", s.Corrupt(), s.Len())
	}
}

// TestConcurrentWriters runs many synced writers at once; everything
// acknowledged is there after reopening, and writers shared commits.
func TestConcurrentWriters(t *testing.T) {
	path := tempDB(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 40
	start := s.commits.Load()
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				i := w*each + j
				if err := s.Put(context.Background(), genLease(i)); err != nil {
					errc <- err
					return
				}
				if _, ok := s.Get(genLease(i).Prefix); !ok {
					errc <- fmt.Errorf("lease %d not readable after Put returned", i)
					return
				}
			}
		}()
		// Readers run alongside.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				s.Overlapping(netip.MustParsePrefix("2001:db8:8000::/36"))
				s.ByDUID(duidOf(w*each + j))
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	commits := int(s.commits.Load() - start)
	t.Logf("%d puts in %d commits", writers*each, commits)
	if commits >= writers*each {
		t.Fatalf("no batching: %d commits for %d puts", commits, writers*each)
	}
	s.Close()
	s = openT(t, path)
	defer s.Close()
	if s.Len() != writers*each {
		t.Fatalf("reopened with %d leases, want %d", s.Len(), writers*each)
	}
	for i := 0; i < writers*each; i++ {
		got, ok := s.Get(genLease(i).Prefix)
		if !ok {
			t.Fatalf("lease %d lost", i)
		}
		if err := sameLease(got, genLease(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSamePrefixOrder has writers race on the same prefixes: memory must
// end up as the disk does, whatever order the commits took.
func TestSamePrefixOrder(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				l := genLease(j % 4)
				l.IAID = uint32(w)
				l.DUID = duidOf(w)
				if j%7 == 6 {
					if err := s.Delete(context.Background(), l.Prefix); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := s.Put(context.Background(), l); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var mem []Lease
	s.Range(func(l Lease) bool { mem = append(mem, l); return true })
	s.Close()
	s = openT(t, path)
	defer s.Close()
	var disk []Lease
	s.Range(func(l Lease) bool { disk = append(disk, l); return true })
	if len(mem) != len(disk) {
		t.Fatalf("memory had %d leases, disk %d", len(mem), len(disk))
	}
	for i := range mem {
		if err := sameLease(mem[i], disk[i]); err != nil {
			t.Fatal(err)
		}
	}
}
