package failover

import (
	"sync"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// nanos is t as Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOfNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ackTable is what the partner is known to hold, by prefix, and the
// versions it rejected (not sent again until they change, §7.5.4).
type ackTable struct {
	mu       sync.RWMutex
	m        map[pkey]ackRec
	rejected map[pkey]int64
}

func newAckTable() *ackTable {
	return &ackTable{m: map[pkey]ackRec{}, rejected: map[pkey]int64{}}
}

func (t *ackTable) load(k pkey, r ackRec) { t.m[k] = r }

func (t *ackTable) get(k pkey) (ackRec, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.m[k]
	return r, ok
}

func (t *ackTable) set(k pkey, r ackRec) {
	t.mu.Lock()
	t.m[k] = r
	delete(t.rejected, k)
	t.mu.Unlock()
}

func (t *ackTable) del(k pkey) {
	t.mu.Lock()
	delete(t.m, k)
	delete(t.rejected, k)
	t.mu.Unlock()
}

func (t *ackTable) reject(k pkey, version int64) {
	t.mu.Lock()
	t.rejected[k] = version
	t.mu.Unlock()
}

// pending reports whether the partner does not hold this version of l (a
// lease in state Expired stands for its deletion).
func (t *ackTable) pending(l *lease.Lease) bool {
	k := keyOf(l.Prefix)
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.m[k]
	if l.State == lease.Expired {
		return ok // the partner knows the lease: tell it it is gone
	}
	if ok && r.updated == nanos(l.Updated) && r.state == l.State {
		return false
	}
	if v, rej := t.rejected[k]; rej && v == nanos(l.Updated) {
		return false
	}
	return true
}

// keys returns every prefix the partner is known to hold.
func (t *ackTable) keys() []pkey {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]pkey, 0, len(t.m))
	for k := range t.m {
		out = append(out, k)
	}
	return out
}

// queue is the bounded queue of lazy updates: one entry per prefix, in
// the order they were first queued, holding the latest version.
type queue struct {
	mu       sync.Mutex
	items    map[pkey]qitem
	order    []pkey
	head     int
	cap      int
	overflow bool // a change was not queued: rescan the store
}

type qitem struct {
	l  lease.Lease
	at time.Time // when first queued (replication lag)
}

func newQueue(capacity int) *queue {
	return &queue{items: map[pkey]qitem{}, cap: capacity, overflow: true}
}

// push queues l; when the queue is full the change is not queued but
// marked for a rescan, so it is never lost and push never blocks.
func (q *queue) push(l lease.Lease, at time.Time) {
	k := keyOf(l.Prefix)
	q.mu.Lock()
	defer q.mu.Unlock()
	if it, ok := q.items[k]; ok {
		it.l = l
		q.items[k] = it
		return
	}
	if len(q.items) >= q.cap {
		q.overflow = true
		return
	}
	q.items[k] = qitem{l: l, at: at}
	q.order = append(q.order, k)
}

func (q *queue) pop() (pkey, qitem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.order) {
		k := q.order[q.head]
		q.head++
		if q.head > 1024 && q.head*2 > len(q.order) {
			q.order = append(q.order[:0], q.order[q.head:]...)
			q.head = 0
		}
		if it, ok := q.items[k]; ok {
			delete(q.items, k)
			return k, it, true
		}
	}
	q.order, q.head = q.order[:0], 0
	return pkey{}, qitem{}, false
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// takeOverflow reports and clears the rescan mark.
func (q *queue) takeOverflow() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	o := q.overflow
	q.overflow = false
	return o
}

func (q *queue) markOverflow() {
	q.mu.Lock()
	q.overflow = true
	q.mu.Unlock()
}

// job is a list of prefixes to send: the answer to UPDREQ/UPDREQALL (with
// UPDDONE once all are sent and acknowledged), or a rescan of the store.
type job struct {
	txid      uint32
	keys      []pkey
	pos       int
	all       bool          // UPDREQALL: send even what the partner holds
	remaining map[pkey]bool // not yet acknowledged (nil: no UPDDONE)
}

// flight is a BNDUPD waiting for its BNDREPLY.
type flight struct {
	key      pkey
	l        lease.Lease // version sent; State Expired: a deletion
	pool     *move       // a block handed over instead of a lease
	lifetime time.Time   // partner lifetime sent
	queued   time.Time   // when the change was queued (zero: from a job)
	sent     time.Time
}

// replicator sends the lazy updates and answers update requests.
type replicator struct {
	e    *Endpoint
	acks *ackTable
	q    *queue
	wake chan struct{}
	lag  *histogram

	mu       sync.Mutex
	conn     *conn
	window   chan struct{}
	inflight map[uint32]*flight
	byKey    map[pkey]uint32
	job      *job
	moves    []move
	turn     bool
	// tombs holds the last version of leases removed from the store whose
	// removal the partner has not acknowledged (also in the journal).
	tombs map[pkey]tomb
}

// tomb is a lease removed from the store, kept until the partner
// acknowledges the removal. Its lease is the last version with State
// Expired; for a reset, Expires is when the operator removed it.
type tomb struct {
	l     lease.Lease
	reset bool // removed by an operator: sent as RESET, not EXPIRED
}

func newReplicator(e *Endpoint, queueSize int) *replicator {
	return &replicator{e: e, acks: newAckTable(), q: newQueue(queueSize), wake: make(chan struct{}, 1),
		lag: newHistogram(), inflight: map[uint32]*flight{}, byKey: map[pkey]uint32{}, tombs: map[pkey]tomb{}}
}

func (r *replicator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// push queues a committed change.
func (r *replicator) push(l lease.Lease, at time.Time) {
	r.q.push(l, at)
	r.poke()
}

// replay loads the journal's records.
func (r *replicator) replay() journalReplay {
	return journalReplay{
		ack:     r.acks.load,
		ackDel:  func(k pkey) { delete(r.acks.m, k) },
		tomb:    func(k pkey, l lease.Lease, reset bool) { r.tombs[k] = tomb{l: l, reset: reset} },
		tombDel: func(k pkey) { delete(r.tombs, k) },
	}
}

// snapshot lists the live journal records: what the partner holds, and
// the removed leases it has not acknowledged.
func (r *replicator) snapshot() []journalRec {
	r.acks.mu.RLock()
	out := make([]journalRec, 0, len(r.acks.m))
	for k, rec := range r.acks.m {
		out = append(out, journalRec{kind: kindAck, key: k, data: rec.encode()})
	}
	r.acks.mu.RUnlock()
	r.mu.Lock()
	for k, t := range r.tombs {
		if v, err := lease.AppendEncoded(nil, &t.l); err == nil {
			out = append(out, journalRec{kind: tombKind(t.reset), key: k, data: v})
		}
	}
	r.mu.Unlock()
	return out
}

// keepTomb remembers a lease removed from the store until the partner
// acknowledges its removal (in memory and in the journal); reset marks an
// operator's removal.
func (r *replicator) keepTomb(l lease.Lease, reset bool) {
	r.mu.Lock()
	r.tombs[keyOf(l.Prefix)] = tomb{l: l, reset: reset}
	r.mu.Unlock()
	r.e.jrnl.putTomb(&l, reset)
}

// tomb returns the last version of a removed lease.
func (r *replicator) tomb(k pkey) (tomb, bool) {
	r.mu.Lock()
	t, ok := r.tombs[k]
	r.mu.Unlock()
	return t, ok
}

// busy reports whether a BNDUPD about k is waiting for its BNDREPLY.
func (r *replicator) busy(k pkey) bool {
	r.mu.Lock()
	_, ok := r.byKey[k]
	r.mu.Unlock()
	return ok
}

func (r *replicator) forgetTomb(k pkey) {
	r.mu.Lock()
	_, ok := r.tombs[k]
	delete(r.tombs, k)
	r.mu.Unlock()
	if ok {
		r.e.jrnl.delTomb(k)
	}
}

// rescan makes the sender compare the store with what the partner holds
// and send every difference (§8.8: entering NORMAL sends all unacked).
func (r *replicator) rescan() {
	r.q.markOverflow()
	r.poke()
}

// start begins sending on c, whose partner accepts maxUnacked BNDUPDs in
// flight.
func (r *replicator) start(c *conn) {
	r.mu.Lock()
	r.conn = c
	r.window = make(chan struct{}, max(1, c.partnerMaxUnacked))
	r.mu.Unlock()
	r.rescan()
	go r.sender(c)
}

// connLost drops what was in flight on c; it will be found again by the
// rescan of the next connection.
func (r *replicator) connLost(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != c {
		return
	}
	r.conn = nil
	clear(r.inflight)
	clear(r.byKey)
	r.job, r.moves = nil, nil
	r.q.markOverflow()
}

// unacked is the number of BNDUPDs in flight.
func (r *replicator) unacked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight)
}

// pendingCount is what is still to be sent: queued changes and the rest of
// a job.
func (r *replicator) pendingCount() int {
	n := r.q.len()
	r.mu.Lock()
	if r.job != nil {
		n += len(r.job.keys) - r.job.pos
	}
	n += len(r.moves)
	r.mu.Unlock()
	return n
}

// oldestUnacked is how long the oldest BNDUPD in flight has waited.
func (r *replicator) oldestUnacked(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest time.Duration
	for _, f := range r.inflight {
		oldest = max(oldest, now.Sub(f.sent))
	}
	return oldest
}

// sender sends updates on c within the partner's window until c ends.
func (r *replicator) sender(c *conn) {
	for {
		r.mu.Lock()
		win := r.window
		r.mu.Unlock()
		select {
		case win <- struct{}{}:
		case <-c.done:
			return
		}
		if !r.sendOne(c) {
			<-win
			select {
			case <-r.wake:
			case <-c.done:
				return
			}
		}
	}
}

// sendOne sends the next update, skipping those with nothing to say. It
// reports false when there is nothing to send.
func (r *replicator) sendOne(c *conn) bool {
	for {
		w, ok := r.next(c)
		if !ok {
			return false
		}
		if r.send(c, w) {
			return true
		}
	}
}

// work is one candidate update.
type work struct {
	key   pkey
	item  *qitem // from the lazy queue
	fromJ *job
	mv    *move
}

// next picks the next candidate: block moves first, then lazy updates and
// job entries in turn, then a rescan if one is due. Outside the states
// that send lazy updates only answers to UPDREQ/UPDREQALL go out.
func (r *replicator) next(c *conn) (work, bool) {
	for {
		r.mu.Lock()
		if r.conn != c {
			r.mu.Unlock()
			return work{}, false
		}
		if len(r.moves) > 0 {
			mv := r.moves[0]
			r.moves = r.moves[1:]
			r.mu.Unlock()
			return work{mv: &mv}, true
		}
		lazy := sendsLazily(r.e.State())
		j := r.job
		if j != nil && j.remaining == nil && !lazy {
			j = nil // a rescan is lazy work too
		}
		pending := j != nil && j.pos < len(j.keys)
		r.turn = !r.turn
		if pending && (r.turn || !lazy || r.q.len() == 0) {
			k := j.keys[j.pos]
			j.pos++
			r.mu.Unlock()
			return work{key: k, fromJ: j}, true
		}
		r.mu.Unlock()
		if !lazy {
			return work{}, false // lazy updates wait for a state that sends them
		}
		if k, it, ok := r.q.pop(); ok {
			return work{key: k, item: &it}, true
		}
		if pending {
			continue
		}
		if j != nil && j.remaining != nil {
			return work{}, false // waiting for the job's acknowledgements
		}
		if j != nil {
			r.mu.Lock()
			if r.job == j {
				r.job = nil
			}
			r.mu.Unlock()
		}
		if !r.q.takeOverflow() {
			return work{}, false
		}
		keys := r.diff()
		r.mu.Lock()
		if r.conn == c && r.job == nil {
			r.job = &job{keys: keys}
		}
		r.mu.Unlock()
	}
}

// diff lists the prefixes whose local version the partner does not hold:
// changed leases, and deletions it has not acknowledged.
func (r *replicator) diff() []pkey {
	var keys []pkey
	r.e.store.Range(func(l lease.Lease) bool {
		if r.acks.pending(&l) {
			keys = append(keys, keyOf(l.Prefix))
		}
		return true
	})
	for _, k := range r.acks.keys() {
		if _, ok := r.e.store.Get(k.prefix()); !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// everything lists every lease (UPDREQALL).
func (r *replicator) everything() []pkey {
	keys := make([]pkey, 0, r.e.store.Len())
	r.e.store.Range(func(l lease.Lease) bool {
		keys = append(keys, keyOf(l.Prefix))
		return true
	})
	return keys
}

// jobDone marks a job entry settled (sent and acknowledged, or nothing to
// send) and sends UPDDONE when the job is complete.
func (r *replicator) jobDone(j *job, k pkey) {
	if j == nil || j.remaining == nil {
		return
	}
	r.mu.Lock()
	delete(j.remaining, k)
	done := j.pos >= len(j.keys) && len(j.remaining) == 0 && r.job == j
	c := r.conn
	if done {
		r.job = nil
	}
	r.mu.Unlock()
	if done && c != nil {
		c.send(&Message{Type: MsgUpdDone, TxID: j.txid})
		r.e.log.Info("failover: sent every requested update", "updates", len(j.keys))
		r.poke()
	}
}

// send builds and sends the BNDUPD for w; false when there was nothing to
// send.
func (r *replicator) send(c *conn, w work) bool {
	e := r.e
	now := e.now()
	if w.mv != nil {
		return r.sendMove(c, *w.mv, now)
	}
	k := w.key
	l, ok := e.store.Get(k.prefix())
	reset := false
	if !ok {
		t, found := r.tomb(k)
		switch {
		case found:
			l, reset = t.l, t.reset
		case w.item != nil && w.item.l.State == lease.Expired:
			l = w.item.l
		default:
			// Nothing left to describe the deletion: the partner will
			// expire its copy at the same time.
			if _, known := r.acks.get(k); known {
				r.acks.del(k)
				e.jrnl.delAcked(k)
			}
			r.jobDone(w.fromJ, k)
			return false
		}
		l.State = lease.Expired
	}
	all := w.fromJ != nil && w.fromJ.all
	if !all && !r.acks.pending(&l) {
		// A removal the partner does not know of needs no update, unless
		// a version is in flight: its acknowledgement sends the removal.
		if l.State == lease.Expired && !r.busy(k) {
			r.forgetTomb(k)
		}
		r.jobDone(w.fromJ, k)
		return false
	}
	r.mu.Lock()
	if _, busy := r.byKey[k]; busy || r.conn != c {
		r.mu.Unlock()
		if w.fromJ != nil && !busy {
			r.jobDone(w.fromJ, k)
		}
		return false // its acknowledgement settles it (and requeues a newer version)
	}
	id := e.nextTxID()
	f := &flight{key: k, l: l, sent: now}
	if w.item != nil {
		f.queued = w.item.at
	}
	rec, _ := r.acks.get(k)
	var expiration time.Time
	if rec.fromPartner {
		expiration = timeOfNanos(rec.end)
	}
	if l.State == lease.Leased {
		f.lifetime = e.partnerLifetime(&l, now)
	}
	r.inflight[id] = f
	r.byKey[k] = id
	r.mu.Unlock()
	b := bindingOf(&l, now, f.lifetime, expiration)
	if reset {
		// Made available by an operator command (§5.5.1). Figure 4 lets it
		// end an ACTIVE binding that is older than the reset, which
		// EXPIRED could not (time(1)); start of state is the reset time.
		b.Status = bsReset
	}
	c.send(&Message{Type: MsgBndUpd, TxID: id, Options: OptionList{clientData(l.DUID, []binding{b}, now)}})
	e.stats.sent.Add(1)
	return true
}

func (r *replicator) sendMove(c *conn, mv move, now time.Time) bool {
	id := r.e.nextTxID()
	r.mu.Lock()
	if r.conn != c {
		r.mu.Unlock()
		return false
	}
	r.inflight[id] = &flight{key: keyOf(mv.block), pool: &mv, sent: now}
	r.mu.Unlock()
	c.send(&Message{Type: MsgBndUpd, TxID: id, Options: OptionList{poolBinding(mv, now)}})
	return true
}

// onReply handles a BNDREPLY (§7.7).
func (r *replicator) onReply(c *conn, m *Message) {
	e := r.e
	now := e.now()
	r.mu.Lock()
	f, ok := r.inflight[m.TxID]
	if !ok || r.conn != c {
		r.mu.Unlock()
		return
	}
	delete(r.inflight, m.TxID)
	if r.byKey[f.key] == m.TxID {
		delete(r.byKey, f.key)
	}
	j := r.job
	win := r.window
	r.mu.Unlock()
	select {
	case <-win:
	default:
	}
	items, whole, msg, err := parseReply(m, now)
	status, ackLife := whole, time.Time{}
	if err != nil {
		status, msg = StatusUnspecFail, err.Error()
	}
	for _, it := range items {
		if it.prefix == f.key.prefix() && status == 0 {
			status, msg, ackLife = it.status, it.msg, it.lifetimeAck
		}
	}
	if f.pool != nil {
		e.onMoveAck(*f.pool, status, msg)
		r.poke()
		return
	}
	r.settle(f, status, msg, ackLife, now)
	if j != nil && j.remaining != nil {
		r.jobDone(j, f.key)
	}
	if cur, ok := e.store.Get(f.key.prefix()); ok {
		if r.acks.pending(&cur) {
			r.push(cur, now)
		}
	} else if t, ok := r.tomb(f.key); ok && status == StatusSuccess && f.l.State != lease.Expired {
		// Removed while this version was in flight: the partner now holds
		// it, so tell it of the removal.
		t.l.State = lease.Expired
		r.push(t.l, now)
	}
	r.poke()
}

// settle records the partner's answer about one lease.
func (r *replicator) settle(f *flight, status uint16, msg string, ackLife, now time.Time) {
	e := r.e
	k := f.key
	if status != StatusSuccess {
		e.stats.rejectedByPartner.Add(1)
		e.log.Debug("failover: partner rejected an update", "lease", f.l.Prefix, "status", status, "message", msg)
		if status != StatusUnspecFail {
			r.acks.reject(k, nanos(f.l.Updated))
		}
		return
	}
	e.stats.acked.Add(1)
	if !f.queued.IsZero() {
		r.lag.observe(now.Sub(f.queued))
	}
	if _, held := e.store.Get(k.prefix()); held || f.l.State == lease.Expired {
		// The removal reached the partner, or the lease exists again. (A
		// version acknowledged after the lease was removed leaves the
		// tomb: the removal is still to be sent.)
		r.forgetTomb(k)
	}
	if f.l.State == lease.Expired {
		r.acks.del(k)
		e.jrnl.delAcked(k)
		return
	}
	end := f.l.Expires
	if ackLife.After(end) {
		end = ackLife
	}
	rec := ackRec{updated: nanos(f.l.Updated), end: nanos(end), state: f.l.State}
	r.acks.set(k, rec)
	e.jrnl.putAcked(k, rec)
}

// onUpdReq answers UPDREQ (what the partner has not acknowledged) or
// UPDREQALL (everything) with BNDUPDs, then UPDDONE (§5.3.5, §5.3.6).
func (r *replicator) onUpdReq(c *conn, m *Message) {
	all := m.Type == MsgUpdReqAll
	var keys []pkey
	if all {
		keys = r.everything()
	} else {
		keys = r.diff()
	}
	j := &job{txid: m.TxID, keys: keys, all: all, remaining: make(map[pkey]bool, len(keys))}
	for _, k := range keys {
		j.remaining[k] = true
	}
	r.e.log.Info("failover: partner asked for updates", "message", MsgName(m.Type), "updates", len(keys))
	r.mu.Lock()
	if r.conn != c {
		r.mu.Unlock()
		return
	}
	if r.job != nil && r.job.remaining == nil {
		r.q.markOverflow() // the interrupted rescan runs again later
	}
	r.job = j
	r.mu.Unlock()
	if len(keys) == 0 {
		r.jobDone(j, pkey{}) // nothing to send: UPDDONE at once
		return
	}
	r.poke()
}

// queueMoves queues block hand-overs (the primary's rebalance).
func (r *replicator) queueMoves(ms []move) {
	if len(ms) == 0 {
		return
	}
	r.mu.Lock()
	r.moves = append(r.moves, ms...)
	r.mu.Unlock()
	r.poke()
}
