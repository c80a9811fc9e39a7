package failover

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// The journal replays what was written before close, ignores a torn tail
// and a corrupt record, and is compacted to the live records at open.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failover.journal")
	acks, tombs := map[pkey]ackRec{}, map[pkey]lease.Lease{}
	rp := journalReplay{
		ack:     func(k pkey, r ackRec) { acks[k] = r },
		ackDel:  func(k pkey) { delete(acks, k) },
		tomb:    func(k pkey, l lease.Lease, _ bool) { tombs[k] = l },
		tombDel: func(k pkey) { delete(tombs, k) },
	}
	snap := func() []journalRec {
		var out []journalRec
		for k, r := range acks {
			out = append(out, journalRec{kind: kindAck, key: k, data: r.encode()})
		}
		for k, l := range tombs {
			v, _ := lease.AppendEncoded(nil, &l)
			out = append(out, journalRec{kind: kindTomb, key: k, data: v})
		}
		return out
	}
	j, err := openJournal(path, testLogger(t), rp, snap)
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParsePrefix("2001:db8:1::1/128"), netip.MustParsePrefix("2001:db8:1::2/128")
	for i := range 1000 {
		j.putAcked(keyOf(a), ackRec{updated: int64(i), end: 7, state: lease.Leased})
	}
	j.putAcked(keyOf(b), ackRec{updated: 5, state: lease.Released, fromPartner: true})
	now := time.Unix(1800000000, 0)
	gone := lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:8000:100::/56"), Kind: lease.PD, DUID: []byte{1, 2},
		IAID: 3, State: lease.Leased, Start: now, Expires: now.Add(time.Hour), Updated: now}
	j.putTomb(&gone, false)
	j.putTomb(&lease.Lease{Prefix: b, Kind: lease.NA, DUID: []byte{9}, State: lease.Leased, Start: now, Expires: now, Updated: now}, true)
	j.delTomb(keyOf(b))
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	clear(acks)
	clear(tombs)
	if j, err = openJournal(path, testLogger(t), rp, snap); err != nil {
		t.Fatal(err)
	}
	j.close()
	if acks[keyOf(a)].updated != 999 || !acks[keyOf(b)].fromPartner || len(tombs) != 1 ||
		tombs[keyOf(gone.Prefix)].IAID != 3 {
		t.Fatalf("replayed acks %v tombs %v", acks, tombs)
	}
	// Compacted: two acks and a tomb, not 1000 records.
	if st, _ := os.Stat(path); st.Size() > 300 {
		t.Fatalf("journal of %d bytes after compaction", st.Size())
	}
	// A torn record at the end and a corrupt one are ignored.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	rec := journalRec{kind: kindAckDel, key: keyOf(a)}.appendTo(nil)
	bad := append([]byte(nil), rec...)
	bad[len(bad)-1] ^= 0xff
	f.Write(append(bad, rec[:5]...))
	f.Close()
	clear(acks)
	clear(tombs)
	if j, err = openJournal(path, testLogger(t), rp, snap); err != nil {
		t.Fatal(err)
	}
	j.close()
	if _, ok := acks[keyOf(a)]; !ok || len(acks) != 2 {
		t.Fatalf("after a corrupt tail: acks %v", acks)
	}
}
