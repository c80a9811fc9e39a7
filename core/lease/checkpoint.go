package lease

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// replay moves the records of the log files written since the last
// checkpoint into bbolt, in one transaction, opens the log files writes go
// to now and after the next checkpoint, and keeps the others as spares.
// It returns the number of records replayed.
func (s *BoltStore) replay() (int, error) {
	var ckpt uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(metaBucket).Get(walCheckpointKey); len(v) == 8 {
			ckpt = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	seqs, err := walFiles(s.path)
	if err != nil {
		return 0, err
	}
	last := ckpt
	var ops []op
	var replayed []string
	for _, seq := range seqs {
		path := walPath(s.path, seq)
		last = max(last, seq)
		if seq <= ckpt {
			s.spares = append(s.spares, path)
			continue
		}
		logged, err := readWAL(path, seq)
		if err != nil {
			return 0, err
		}
		ops = append(ops, logged...)
		replayed = append(replayed, path)
	}
	if len(replayed) > 0 {
		if err := s.commitToBolt(ops, last); err != nil {
			return 0, err
		}
		s.spares = append(s.spares, replayed...)
	}
	s.dropSpares()
	// The file after this one is made now too: zero-filling it later,
	// while the server answers, would hold up the flushes of the log.
	if s.wal, err = newWALFile(s.path, last+1, s.takeSpare(), !s.nosync); err != nil {
		return 0, err
	}
	s.nextWAL, err = newWALFile(s.path, last+2, s.takeSpare(), !s.nosync)
	return len(ops), err
}

// checkpointer checkpoints every checkpointEvery, or sooner when the log
// holds checkpointOps changes, until Close.
func (s *BoltStore) checkpointer() {
	defer close(s.done)
	t := time.NewTicker(s.ckptEvery)
	defer t.Stop()
	lastTrim := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.ckptWanted:
		}
		if err := s.checkpoint(); err != nil {
			s.log.Warn("lease checkpoint failed; the log keeps the changes", "err", err)
		}
		if time.Since(lastTrim) >= trimEvery {
			s.trimMapped()
			lastTrim = time.Now()
		}
	}
}

// checkpoint switches writes to a new log file and writes the changes
// logged until then into bbolt in one transaction. The log files are
// given up only once that committed; if it fails, the changes are retried
// at the next checkpoint and stay in the logs for Open to replay.
func (s *BoltStore) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.walMu.Lock()
	idle := len(s.unckpt) == 0 && len(s.retained) == 0
	s.walMu.Unlock()
	if idle {
		return nil
	}
	if s.nextWAL == nil { // made outside walMu: writers go on meanwhile
		s.walMu.Lock()
		seq := s.wal.seq + 1
		s.walMu.Unlock()
		next, err := newWALFile(s.path, seq, s.takeSpare(), !s.nosync)
		if err != nil {
			return err
		}
		s.nextWAL = next
	}
	s.walMu.Lock()
	if s.walClosed {
		s.walMu.Unlock()
		return ErrClosed
	}
	old, ops := s.wal, s.unckpt
	s.wal, s.nextWAL, s.unckpt = s.nextWAL, nil, nil
	s.walMu.Unlock()
	s.full = append(s.full, old)
	ops = append(s.retained, ops...)
	if err := s.commitToBolt(ops, old.seq); err != nil {
		s.retained = ops
		return fmt.Errorf("checkpointing %d lease changes: %w", len(ops), err)
	}
	s.retained = nil
	for _, w := range s.full {
		w.f.Close()
		s.spares = append(s.spares, w.path)
	}
	s.full = nil
	s.dropSpares()
	return nil
}

// commitToBolt writes the last op of each key in ops into bbolt and
// records log file seq as the last one bbolt holds, in one transaction.
func (s *BoltStore) commitToBolt(ops []op, seq uint64) error {
	writes := lastPerKey(ops)
	return s.db.Update(func(tx *bolt.Tx) error {
		if s.failCheckpoint != nil {
			if err := s.failCheckpoint(); err != nil {
				return err
			}
		}
		b := tx.Bucket(leasesBucket)
		for _, o := range writes {
			var err error
			if o.del {
				err = b.Delete(o.key[:])
			} else {
				err = b.Put(o.key[:], o.val)
			}
			if err != nil {
				return err
			}
		}
		return tx.Bucket(metaBucket).Put(walCheckpointKey, binary.BigEndian.AppendUint64(nil, seq))
	})
}

// lastPerKey returns the last op of each key in ops, in key order: what a
// checkpoint has to write. In order, bbolt's cursor walks each leaf once.
func lastPerKey(ops []op) []*op {
	w := make([]*op, len(ops))
	for i := range ops {
		w[i] = &ops[i]
	}
	slices.SortStableFunc(w, func(a, b *op) int { return bytes.Compare(a.key[:], b.key[:]) })
	out := w[:0]
	for i, o := range w {
		if i+1 < len(w) && w[i+1].key == o.key {
			continue // a later write of the same key follows
		}
		out = append(out, o)
	}
	return out
}

// takeSpare returns a checkpointed log file to reuse, or "".
func (s *BoltStore) takeSpare() string {
	if len(s.spares) == 0 {
		return ""
	}
	p := s.spares[len(s.spares)-1]
	s.spares = s.spares[:len(s.spares)-1]
	return p
}

// dropSpares removes the spare log files past walSpares.
func (s *BoltStore) dropSpares() {
	for len(s.spares) > walSpares {
		if err := os.Remove(s.spares[0]); err != nil && !os.IsNotExist(err) {
			s.log.Warn("removing an old lease log", "err", err)
		}
		s.spares = s.spares[1:]
	}
}

// closeWAL closes the log files; groups reaching the log later fail.
func (s *BoltStore) closeWAL() {
	s.walMu.Lock()
	defer s.walMu.Unlock()
	s.walClosed = true
	for _, w := range append([]*walFile{s.wal, s.nextWAL}, s.full...) {
		if w != nil {
			w.f.Close()
		}
	}
}

// trimMapped gives back the pages of bbolt's memory map: they are page
// cache the kernel would count in the server's resident memory although
// every read is served from the in-memory index. A read transaction keeps
// bbolt from remapping meanwhile.
func (s *BoltStore) trimMapped() {
	err := s.db.View(func(tx *bolt.Tx) error {
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, s.db.Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		s.log.Debug("madvise of the lease database map", "err", err)
	}
}
