package lease

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Batching: concurrent Puts and Deletes join one bbolt transaction
// (DB.Batch) and share its two fsyncs (data pages, then meta page). A
// batch starts when batchSize callers have joined or batchDelay after the
// first one did. A writer that finds no other write in flight commits at
// once (DB.Update) instead of waiting batchDelay for company that is not
// coming; the writers arriving while it commits form the next batch.
// batchDelay, at 5 ms, gathers a busy server's writers into few commits:
// each commit costs two fdatasyncs and a rewrite of every B+tree page it
// touches, which profiles under perfdhcp showed as the server's largest
// CPU cost at 1 ms (40%, halved at 5 ms), while 5 ms stays small next to a
// client's retransmission timer (1 s for Request). The
// size cap bounds the work bbolt redoes when one caller's write fails (it
// reruns the rest of the batch without it) and the memory a batch holds.
const (
	batchDelay = 5 * time.Millisecond
	batchSize  = 256
	lockWait   = 2 * time.Second // for another process holding the file
	schema     = 1
)

var (
	leasesBucket = []byte("leases")
	metaBucket   = []byte("meta")
	schemaKey    = []byte("schema")
)

// ErrClosed is returned by writes to a closed store.
var ErrClosed = errors.New("lease store closed")

// Options tunes Open.
type Options struct {
	// NoSync skips fsync: writes survive a process crash but not a power
	// loss. For tests and benchmarks only.
	NoSync bool
	// Logger receives corrupt-record warnings and bbolt's errors; nil
	// discards them.
	Logger *slog.Logger
}

// BoltStore is the embedded lease Store: a bbolt file holding one record
// per prefix, with every lease loaded into memory at Open. Reads are
// served from memory and never wait for the disk; writes return once
// committed and fsync'd, and memory changes only after a commit succeeds.
type BoltStore struct {
	db      *bolt.DB
	log     *slog.Logger
	corrupt int
	closed  atomic.Bool
	writing atomic.Int32 // writes in flight

	mu        sync.RWMutex // guards idx and appliedTx
	applied   sync.Cond    // on mu: a transaction's changes reached idx
	appliedTx int          // last bbolt transaction applied to idx
	idx       *index

	stageMu  sync.Mutex // guards stagedTx and staged (the writer's)
	stagedTx *bolt.Tx
	staged   *[]op

	// failWrite, set by tests only, fails a write inside its transaction.
	failWrite func([]op) error
}

var _ Store = (*BoltStore)(nil)

// op is one write: a record to put (val is its encoding; rec aliases val)
// or a prefix to delete.
type op struct {
	key  [prefixKeyLen]byte
	val  []byte
	rec  record
	link uint16
	name uint16
	del  bool
}

// Open opens (creating if needed) the lease database at path and loads
// every lease into memory. Records that do not decode are logged, counted
// (see Corrupt) and left on disk untouched.
func Open(path string, opts Options) (*BoltStore, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        lockWait,
		NoSync:         opts.NoSync,
		NoFreelistSync: true, // rebuilt at open; saves a write per commit
		FreelistType:   bolt.FreelistMapType,
		Logger:         boltLogger{log},
	})
	if err != nil {
		return nil, fmt.Errorf("opening lease database %s: %w", path, err)
	}
	db.MaxBatchDelay, db.MaxBatchSize = batchDelay, batchSize
	s := &BoltStore{db: db, log: log}
	s.applied.L = &s.mu
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("lease database %s: %w", path, err)
	}
	start := time.Now()
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("loading leases from %s: %w", path, err)
	}
	log.Info("lease store opened", "path", path, "leases", s.idx.n,
		"corrupt", s.corrupt, "took", time.Since(start))
	return s, nil
}

// init creates the buckets and checks the schema version.
func (s *BoltStore) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(leasesBucket); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		v := m.Get(schemaKey)
		if v == nil {
			return m.Put(schemaKey, []byte{schema})
		}
		if !bytes.Equal(v, []byte{schema}) {
			return fmt.Errorf("schema %x, this server reads %d", v, schema)
		}
		return nil
	})
}

// load reads every record into a new index.
func (s *BoltStore) load() error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(leasesBucket)
		s.idx = newIndex(b.Stats().KeyN)
		s.appliedTx = tx.ID()
		return b.ForEach(func(k, v []byte) error {
			if err := s.loadOne(k, v); err != nil {
				s.corrupt++
				s.log.Warn("skipping corrupt lease record", "key", hex.EncodeToString(k), "err", err)
			}
			return nil
		})
	})
}

func (s *BoltStore) loadOne(k, v []byte) error {
	r, err := decodeRecord(v)
	if err != nil {
		return err
	}
	if key := r.key(); !bytes.Equal(k, key[:]) {
		return fmt.Errorf("%w: record of %s under another key", ErrCorrupt, r.prefix())
	}
	link, err := s.idx.nameID(r.link)
	if err != nil {
		return err
	}
	name, err := s.idx.nameID(r.name)
	if err != nil {
		return err
	}
	s.idx.put(&r, link, name)
	return nil
}

// Corrupt is the number of records skipped at Open because they did not
// decode.
func (s *BoltStore) Corrupt() int { return s.corrupt }

// Put writes leases (insert or replace by Prefix) and returns once they
// are on disk. Every lease is validated first: one invalid lease fails
// the call and nothing is written. ctx is checked before the write
// starts; a write once started completes, so that the result is known.
func (s *BoltStore) Put(ctx context.Context, ls ...Lease) error {
	if len(ls) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ends := make([]int, len(ls))
	var buf []byte
	for i := range ls {
		var err error
		if buf, err = AppendEncoded(buf, &ls[i]); err != nil {
			return err
		}
		ends[i] = len(buf)
	}
	ops := make([]op, len(ls))
	for i, start := 0, 0; i < len(ls); start, i = ends[i], i+1 {
		o := &ops[i]
		o.val = buf[start:ends[i]:ends[i]]
		o.rec, _ = decodeRecord(o.val) // just encoded: cannot fail
		o.key = o.rec.key()
	}
	if err := s.internNames(ops); err != nil {
		return err
	}
	return s.write(ops)
}

// internNames gives each op its link and prefix name ids. Names are
// interned before the commit so that applying it cannot fail; a name
// left unused by a failed commit costs a few bytes.
func (s *BoltStore) internNames(ops []op) error {
	missing := false
	s.mu.RLock()
	for i := range ops {
		o := &ops[i]
		var ok bool
		if o.link, o.name, ok = s.idx.hasNames(o.rec.link, o.rec.name); !ok {
			missing = true
		}
	}
	s.mu.RUnlock()
	if !missing {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ops {
		o := &ops[i]
		var err error
		if o.link, err = s.idx.nameID(o.rec.link); err != nil {
			return err
		}
		if o.name, err = s.idx.nameID(o.rec.name); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the leases of these prefixes, durably. Prefixes without
// a lease are ignored.
func (s *BoltStore) Delete(ctx context.Context, ps ...netip.Prefix) error {
	if len(ps) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ops := make([]op, len(ps))
	for i, p := range ps {
		if err := checkPrefix(p); err != nil {
			return err
		}
		ops[i] = op{key: keyOf(p), del: true}
	}
	return s.write(ops)
}

// write commits ops in a batched transaction. The in-memory index is
// updated by a commit handler, so only after the commit succeeded.
func (s *BoltStore) write(ops []op) error {
	if s.closed.Load() {
		return ErrClosed
	}
	commit := s.db.Batch
	if s.writing.Add(1) == 1 {
		commit = s.db.Update // alone: nobody to wait for
	}
	defer s.writing.Add(-1)
	err := commit(func(tx *bolt.Tx) error {
		if s.failWrite != nil {
			if err := s.failWrite(ops); err != nil {
				return err
			}
		}
		b := tx.Bucket(leasesBucket)
		for i := range ops {
			var err error
			if ops[i].del {
				err = b.Delete(ops[i].key[:])
			} else {
				err = b.Put(ops[i].key[:], ops[i].val)
			}
			if err != nil {
				return err
			}
		}
		s.stage(tx, ops)
		return nil
	})
	if err != nil {
		return fmt.Errorf("committing %d lease changes: %w", len(ops), err)
	}
	return nil
}

// stage queues ops to be applied to memory when tx commits. The first
// write of a transaction registers the commit handler; the writes bbolt
// batches with it append to the same list. A transaction that rolls
// back (bbolt then reruns the batch in a new one) never applies its list.
func (s *BoltStore) stage(tx *bolt.Tx, ops []op) {
	s.stageMu.Lock()
	defer s.stageMu.Unlock()
	if s.stagedTx != tx {
		list := new([]op)
		s.stagedTx, s.staged = tx, list
		id := tx.ID()
		tx.OnCommit(func() { s.apply(id, *list) })
	}
	*s.staged = append(*s.staged, ops...)
}

// apply updates memory with transaction id's writes. bbolt runs commit
// handlers after releasing its writer lock, so the handler of the next
// transaction may run first; committed ids are consecutive, and apply
// waits for its predecessor so memory follows the commit order.
func (s *BoltStore) apply(id int, ops []op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.appliedTx < id-1 {
		s.applied.Wait()
	}
	for i := range ops {
		if o := &ops[i]; o.del {
			s.idx.remove(o.key)
		} else {
			s.idx.put(&o.rec, o.link, o.name)
		}
	}
	s.appliedTx = id
	s.applied.Broadcast()
}

// Get returns the lease of exactly prefix p.
func (s *BoltStore) Get(p netip.Prefix) (Lease, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.get(p)
}

// Overlapping returns the leases whose prefix overlaps p: those containing
// it and those inside it. Cost: one map lookup per prefix length in use
// plus a binary search, then one step per lease returned.
func (s *BoltStore) Overlapping(p netip.Prefix) []Lease {
	if !p.IsValid() || !p.Addr().Is6() {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.overlapping(p)
}

// ByBinding returns the leases of one binding, in no particular order.
func (s *BoltStore) ByBinding(b Binding) []Lease {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.byBinding(b)
}

// ByDUID returns every lease of a client, in no particular order.
func (s *BoltStore) ByDUID(duid []byte) []Lease {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.byDUID(duid)
}

// Expired returns the leases, in any state, whose Expires is before now,
// for the engine to reclaim. It scans every lease (about 10 ns each).
func (s *BoltStore) Expired(now time.Time) []Lease {
	n, err := nanosOf(now)
	if err != nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.expired(n)
}

// Range calls fn for every lease, in prefix order, until fn returns false.
// fn must not call the store.
func (s *BoltStore) Range(fn func(Lease) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.idx.each(fn)
}

// Len is the number of leases held.
func (s *BoltStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.n
}

// StateCounts counts leases by state.
type StateCounts struct {
	Leased, Released, Declined, Expired int
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Leases  int
	Corrupt int // records skipped at Open
	NA, PD  StateCounts
}

// Stats returns lease counts per kind and state.
func (s *BoltStore) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := &s.idx.counts
	of := func(k Kind) StateCounts {
		return StateCounts{c[k][Leased], c[k][Released], c[k][Declined], c[k][Expired]}
	}
	return Stats{Leases: s.idx.n, Corrupt: s.corrupt, NA: of(NA), PD: of(PD)}
}

// Close closes the database. Writes still waiting for their batch fail;
// reads keep answering from memory.
func (s *BoltStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing lease database: %w", err)
	}
	return nil
}

// boltLogger passes bbolt's messages to slog: its per-transaction debug
// lines are dropped (they bury the server's own at debug level), its
// routine information goes to debug, warnings and errors stay.
type boltLogger struct{ l *slog.Logger }

func (b boltLogger) Debug(...any)                {}
func (b boltLogger) Debugf(string, ...any)       {}
func (b boltLogger) Info(v ...any)               { b.l.Debug(fmt.Sprint(v...)) }
func (b boltLogger) Infof(f string, v ...any)    { b.l.Debug(fmt.Sprintf(f, v...)) }
func (b boltLogger) Warning(v ...any)            { b.l.Warn(fmt.Sprint(v...)) }
func (b boltLogger) Warningf(f string, v ...any) { b.l.Warn(fmt.Sprintf(f, v...)) }
func (b boltLogger) Error(v ...any)              { b.l.Error(fmt.Sprint(v...)) }
func (b boltLogger) Errorf(f string, v ...any)   { b.l.Error(fmt.Sprintf(f, v...)) }
func (b boltLogger) Fatal(v ...any)              { b.Panic(v...) }
func (b boltLogger) Fatalf(f string, v ...any)   { b.Panicf(f, v...) }
func (b boltLogger) Panic(v ...any)              { b.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (b boltLogger) Panicf(f string, v ...any) {
	b.l.Error(fmt.Sprintf(f, v...))
	panic(fmt.Sprintf(f, v...))
}
