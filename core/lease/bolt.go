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

// Writes go to the write-ahead log (wal.go) in groups: the writers that
// arrive while a group is being written and flushed form the next one, and
// share its write and fdatasync. While writers come concurrently (the last
// group had more than one) a group starts at most every groupEvery, so
// that a busy server gathers its writers into a few hundred flushes a
// second (each costs the CPU of a small write plus the flush); a lone
// writer's write is flushed at once. groupEvery stays small next
// to a client's retransmission timer (1 s for Request).
//
// A checkpoint moves the logged changes into the bbolt file every
// checkpointEvery (sooner past checkpointOps changes), in one transaction.
// Its cost is mostly per B+tree page rewritten, so fewer, larger
// checkpoints write each page for more leases: at 16,000 leases a second,
// checkpoints every 5 s instead of every second took the server's CPU
// per exchange down by 8%. The price is a longer replay after a crash:
// at most checkpointOps changes, which took 0.25 s on top of the 1.9 s
// open of a million-lease database. trimEvery the checkpointer also gives back the pages of bbolt's
// memory map that loading and writing have touched (they are page cache;
// reads are served from memory, not from the map).
const (
	groupEvery      = 2 * time.Millisecond
	checkpointEvery = 5 * time.Second
	checkpointOps   = 100_000
	trimEvery       = time.Minute
	lockWait        = 2 * time.Second // for another process holding the file
	schema          = 1
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

	checkpointEvery time.Duration // tests only; 0: the default
}

// BoltStore is the embedded lease Store: a bbolt file holding one record
// per prefix, in front of it a write-ahead log, and every lease loaded into
// memory at Open. Reads are served from memory and never wait for the
// disk; writes return once logged and fdatasync'd, and memory changes only
// after that succeeded.
type BoltStore struct {
	db      *bolt.DB
	path    string
	nosync  bool
	log     *slog.Logger
	corrupt int
	closed  atomic.Bool
	commits atomic.Int64 // log groups written

	mu  sync.RWMutex // guards idx
	idx *index

	// Group commit: forming collects the writers of the next group; the
	// writer that finds no leader commits it.
	gmu         sync.Mutex
	gcond       sync.Cond // on gmu: a group is done
	forming     *group
	leading     bool
	lastGroup   time.Time  // when the last group started
	lastWriters int        // and how many writers it had
	walMu       sync.Mutex // guards wal, unckpt, walClosed
	wal         *walFile
	walClosed   bool
	unckpt      []op // logged, not yet in bbolt
	ckptMu      sync.Mutex
	ckptEvery   time.Duration
	ckptWanted  chan struct{}
	stop, done  chan struct{}
	// guarded by ckptMu:
	nextWAL  *walFile   // made ahead of the next checkpoint
	retained []op       // logged, a failed checkpoint's
	full     []*walFile // rotated out, not yet checkpointed
	spares   []string   // checkpointed files, for reuse

	// Set by tests only: failWrite fails one writer's write, failLog a
	// whole group's log write, failCheckpoint a transaction moving logged
	// changes into bbolt.
	failWrite      func([]op) error
	failLog        func() error
	failCheckpoint func() error
}

// group is the writes that share one log write and flush.
type group struct {
	ops     []op
	writers int
	err     error
	done    bool
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
	s := &BoltStore{db: db, path: path, nosync: opts.NoSync, log: log,
		ckptEvery:  opts.checkpointEvery,
		ckptWanted: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if s.ckptEvery <= 0 {
		s.ckptEvery = checkpointEvery
	}
	s.gcond.L = &s.gmu
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("lease database %s: %w", path, err)
	}
	start := time.Now()
	replayed, err := s.replay()
	if err != nil {
		s.closeWAL()
		db.Close()
		return nil, fmt.Errorf("replaying the log of %s: %w", path, err)
	}
	if err := s.load(); err != nil {
		s.closeWAL()
		db.Close()
		return nil, fmt.Errorf("loading leases from %s: %w", path, err)
	}
	s.trimMapped()
	log.Info("lease store opened", "path", path, "leases", s.idx.n, "replayed", replayed,
		"corrupt", s.corrupt, "took", time.Since(start))
	go s.checkpointer()
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

// write logs ops as part of a group (see groupEvery) and applies them to
// memory once the group's log write is flushed.
func (s *BoltStore) write(ops []op) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.failWrite != nil {
		if err := s.failWrite(ops); err != nil {
			return fmt.Errorf("committing %d lease changes: %w", len(ops), err)
		}
	}
	s.gmu.Lock()
	g := s.forming
	if g == nil {
		g = new(group)
		s.forming = g
	}
	g.ops = append(g.ops, ops...)
	g.writers++
	for !g.done {
		if s.leading {
			s.gcond.Wait()
			continue
		}
		// No leader: g is the group forming (groups before it are done).
		s.leading = true
		if s.lastWriters > 1 { // concurrent writers: gather those arriving
			if wait := groupEvery - time.Since(s.lastGroup); wait > 0 {
				s.gmu.Unlock()
				time.Sleep(wait)
				s.gmu.Lock()
			}
		}
		s.forming, s.lastGroup, s.lastWriters = nil, time.Now(), g.writers
		s.gmu.Unlock()
		err := s.commitGroup(g.ops)
		s.gmu.Lock()
		g.err, g.done, s.leading = err, true, false
		s.gcond.Broadcast()
	}
	err := g.err
	s.gmu.Unlock()
	if err != nil {
		return fmt.Errorf("committing %d lease changes: %w", len(ops), err)
	}
	return nil
}

// commitGroup writes ops to the log, flushes it, and applies them to
// memory.
func (s *BoltStore) commitGroup(ops []op) error {
	s.walMu.Lock()
	defer s.walMu.Unlock()
	if s.walClosed {
		return ErrClosed
	}
	if s.failLog != nil {
		if err := s.failLog(); err != nil {
			return err
		}
	}
	size := 0
	for i := range ops {
		size += walRecordLen(&ops[i])
	}
	buf := make([]byte, 0, size)
	seq := uint32(s.wal.seq)
	for i := range ops {
		buf = appendWALRecord(buf, seq, &ops[i])
	}
	if err := s.wal.write(buf, !s.nosync); err != nil {
		return err
	}
	s.mu.Lock()
	for i := range ops {
		if o := &ops[i]; o.del {
			s.idx.remove(o.key)
		} else {
			s.idx.put(&o.rec, o.link, o.name)
		}
	}
	s.mu.Unlock()
	s.unckpt = append(s.unckpt, ops...)
	s.commits.Add(1)
	if len(s.unckpt) >= checkpointOps {
		select {
		case s.ckptWanted <- struct{}{}:
		default:
		}
	}
	return nil
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

// Close checkpoints what the log holds and closes the database. Writes
// not yet in a group fail; reads keep answering from memory.
func (s *BoltStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.done
	err := s.checkpoint()
	s.closeWAL()
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
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
