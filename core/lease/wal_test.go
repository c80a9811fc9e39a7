package lease

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// crashClose stops s as a crash would: no final checkpoint, files closed
// where they stand.
func crashClose(t *testing.T, s *BoltStore) {
	t.Helper()
	s.closed.Store(true)
	close(s.stop)
	<-s.done
	s.closeWAL()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// boltOnly opens the database file with the logs set aside: what bbolt
// alone holds.
func boltOnly(t *testing.T, path string) *BoltStore {
	t.Helper()
	seqs, err := walFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		if err := os.Remove(walPath(path, seq)); err != nil {
			t.Fatal(err)
		}
	}
	return openT(t, path)
}

// checkLogFiles fails unless the log files of path are at most the
// spares kept, the current file and the next: spares are reused.
func checkLogFiles(t *testing.T, path string) {
	t.Helper()
	seqs, err := walFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) > walSpares+2 {
		t.Fatalf("%d log files, want at most %d (spares, current, next)", len(seqs), walSpares+2)
	}
}

func checkHolds(t *testing.T, s *BoltStore, from, to int) {
	t.Helper()
	if s.Len() != to-from {
		t.Fatalf("store holds %d leases, want %d", s.Len(), to-from)
	}
	for i := from; i < to; i++ {
		got, ok := s.Get(genLease(i).Prefix)
		if !ok {
			t.Fatalf("lease %d lost", i)
		}
		if err := sameLease(got, genLease(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogReplayedAfterCrash stops the store with every write only in the
// log: reopening replays them into bbolt, which then holds them alone.
func TestLogReplayedAfterCrash(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	for i := 0; i < 50; i++ {
		mustPut(t, s, genLease(i))
	}
	if err := s.Delete(context.Background(), genLease(0).Prefix, genLease(1).Prefix); err != nil {
		t.Fatal(err)
	}
	crashClose(t, s)

	s = openT(t, path)
	checkHolds(t, s, 2, 50)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = boltOnly(t, path)
	defer s.Close()
	checkHolds(t, s, 2, 50)
}

// TestCloseCheckpoints: after a clean Close the bbolt file holds every
// write, and the log files left are spares.
func TestCloseCheckpoints(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	for i := 0; i < 20; i++ {
		mustPut(t, s, genLease(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkLogFiles(t, path)
	s = boltOnly(t, path)
	defer s.Close()
	checkHolds(t, s, 0, 20)
}

// TestReusedLogNotReplayed reuses log files whose old records would undo
// later writes if read again: reopening after a crash must not see them.
func TestReusedLogNotReplayed(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	for round := 0; round < 6; round++ {
		for i := 0; i < 30; i++ {
			mustPut(t, s, genLease(i)) // stale puts for the spares
		}
		if err := s.checkpoint(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30; i++ {
			if err := s.Delete(context.Background(), genLease(i).Prefix); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, genLease(100)) // only in the log
	crashClose(t, s)
	checkLogFiles(t, path)
	s = openT(t, path)
	defer s.Close()
	checkHolds(t, s, 100, 101)
}

// TestTornLogTail appends a torn record after the acknowledged ones, as a
// crash during an unacknowledged group's write may leave: it is ignored.
func TestTornLogTail(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	for i := 0; i < 10; i++ {
		mustPut(t, s, genLease(i))
	}
	w := s.wal
	l := genLease(10)
	r, err := recordOf(&l)
	if err != nil {
		t.Fatal(err)
	}
	o := op{key: r.key(), val: r.appendTo(nil)}
	rec := appendWALRecord(nil, uint32(w.seq), &o)
	path2, off := w.path, w.off
	crashClose(t, s)
	f, err := os.OpenFile(path2, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rec[:len(rec)-5], off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = openT(t, path)
	defer s.Close()
	checkHolds(t, s, 0, 10)
	if s.Corrupt() != 0 {
		t.Fatalf("%d corrupt", s.Corrupt())
	}
}

// TestFailedLogWrite fails a group's log write: every writer of the group
// gets the error, memory does not change, and the store goes on.
func TestFailedLogWrite(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	mustPut(t, s, genLease(0))
	boom := errors.New("disk full")
	s.failLog = func() error { return boom }
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(context.Background(), genLease(i+1))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("writer %d: %v, want the log's error", i, err)
		}
	}
	checkHolds(t, s, 0, 1)
	s.failLog = nil
	mustPut(t, s, genLease(1))
	crashClose(t, s)
	s = openT(t, path)
	defer s.Close()
	checkHolds(t, s, 0, 2)
}

// TestFailedCheckpointRetried fails checkpoints: the changes stay in the
// logs (a crash loses nothing) and the next checkpoint that works writes
// them all to bbolt.
func TestFailedCheckpointRetried(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	boom := errors.New("checkpoint failed")
	s.failCheckpoint = func() error { return boom }
	for round := 0; round < 3; round++ {
		for i := round * 10; i < round*10+10; i++ {
			mustPut(t, s, genLease(i))
		}
		if err := s.checkpoint(); !errors.Is(err, boom) {
			t.Fatalf("checkpoint: %v", err)
		}
	}
	crashClose(t, s)
	s = openT(t, path) // replays every log since the last checkpoint
	checkHolds(t, s, 0, 30)
	s.failCheckpoint = func() error { return boom }
	mustPut(t, s, genLease(30))
	if err := s.checkpoint(); !errors.Is(err, boom) {
		t.Fatalf("checkpoint: %v", err)
	}
	s.failCheckpoint = nil
	mustPut(t, s, genLease(31))
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	crashClose(t, s)
	s = boltOnly(t, path)
	defer s.Close()
	checkHolds(t, s, 0, 32)
}

// TestCheckpointMeta: the meta bucket names the last checkpointed log.
func TestCheckpointMeta(t *testing.T) {
	path := tempDB(t)
	s := openT(t, path)
	mustPut(t, s, genLease(1))
	seq := s.wal.seq
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		got = append(got, tx.Bucket(metaBucket).Get(walCheckpointKey)...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(got) != 8 || got[7] != byte(seq) {
		t.Fatalf("checkpoint key %x, want log %d", got, seq)
	}
}

// TestLastPerKey: a checkpoint writes each key once, its last op, in key
// order.
func TestLastPerKey(t *testing.T) {
	mk := func(i int, iaid uint32, del bool) op {
		l := genLease(i)
		return op{key: keyOf(l.Prefix), rec: record{iaid: iaid}, del: del}
	}
	ops := []op{mk(2, 1, false), mk(1, 1, false), mk(2, 2, true), mk(3, 1, true), mk(1, 2, false), mk(3, 2, false)}
	got := lastPerKey(ops)
	if len(got) != 3 {
		t.Fatalf("%d writes, want 3", len(got))
	}
	for i, o := range got {
		if o.rec.iaid != 2 {
			t.Errorf("write %d is not its key's last op: %+v", i, o)
		}
		if i > 0 && bytes.Compare(got[i-1].key[:], o.key[:]) >= 0 {
			t.Errorf("writes not in key order at %d", i)
		}
	}
}
