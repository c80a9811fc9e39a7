package failover

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Config is one endpoint of a failover relationship.
type Config struct {
	Role Role
	Name string // relationship name
	// Local is the secondary's listening address; for the primary, the
	// address outgoing connections are made from (an unspecified address
	// or empty: any).
	Local string
	Peer  string // the partner's address (host:port)
	// MCLT is the Maximum Client Lead Time; the secondary adopts the
	// primary's.
	MCLT time.Duration
	// Keepalive is how long without a message from the partner before the
	// connection is considered dead; CONTACT is sent every keepalive/4.
	Keepalive time.Duration
	// MaxUnacked is how many BNDUPDs this server accepts in flight.
	MaxUnacked int
	// AutoPartnerDown, when positive, moves COMMUNICATIONS-INTERRUPTED to
	// PARTNER-DOWN after this long.
	AutoPartnerDown time.Duration
	// TLS secures the connection (mutual TLS); nil means plain TCP.
	TLS *tls.Config
	// StateDir holds failover.db.
	StateDir string
	// StartupTime is how long STARTUP waits for the partner (default 5s).
	StartupTime time.Duration
	// QueueSize bounds the lazy-update queue (default 65536).
	QueueSize int
	// Tick is the resolution of the state timers (default 250ms).
	Tick time.Duration
}

func (c *Config) defaults() error {
	if c.Role != Primary && c.Role != Secondary {
		return fmt.Errorf("failover: role must be primary or secondary")
	}
	if c.Peer == "" {
		return fmt.Errorf("failover: no peer address")
	}
	if c.MCLT <= 0 {
		c.MCLT = time.Hour
	}
	if c.Keepalive <= 0 {
		c.Keepalive = 60 * time.Second
	}
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = 10
	}
	if c.StartupTime <= 0 {
		c.StartupTime = 5 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1 << 16
	}
	if c.Tick <= 0 {
		c.Tick = 250 * time.Millisecond
	}
	return nil
}

// Options are what an Endpoint needs from the server it is part of.
type Options struct {
	Store  lease.Store
	Layout *Layout
	Logger *slog.Logger
	// Now returns the current time (tests set it).
	Now func() time.Time
	// ApplyConfig, on the secondary, applies configuration sections the
	// primary pushed (hook6ctl failover sync): merge them into the local
	// file and reload. Nil refuses pushes.
	ApplyConfig func(sections []byte, exact bool) error
}

// Transition is one change of the endpoint state.
type Transition struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

// historyLen is how many transitions Status shows.
const historyLen = 16

// Endpoint is this server's side of the relationship.
type Endpoint struct {
	cfg    Config
	store  lease.Store
	log    *slog.Logger
	now    func() time.Time
	meta   *meta
	jrnl   *journal
	layout atomic.Pointer[Layout]
	pools  *pools
	apply  func([]byte, bool) error

	cur atomic.Uint32 // current State, for the engine's calls
	// reqID is the transaction-id of our UPDREQ/UPDREQALL awaiting its
	// UPDDONE on the current connection, 0 when none.
	reqID       atomic.Uint32
	lastContact atomic.Int64 // Unix nanoseconds of the partner's last message
	mclt        atomic.Int64
	pdt         atomic.Int64 // PARTNER-DOWN time, Unix nanoseconds
	txids       atomic.Uint32

	mu             sync.Mutex // guards the fields below
	p              persisted
	hadContact     bool      // had talked to the partner before this connection
	lastRun        time.Time // when this server last operated before this start
	startupUntil   time.Time
	conn           *conn
	commOK         bool
	partnerFlags   uint8
	recoverUntil   time.Time
	autoPDAt       time.Time
	lastOpSaved    time.Time
	partnerEverRan bool // partner's COMMUNICATED flag seen
	history        []Transition

	rep   *replicator
	stats counters
	syncs *syncer
}

// New opens the endpoint's database in cfg.StateDir and restores its
// state; Run starts it.
func New(cfg Config, opts Options) (*Endpoint, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if opts.Store == nil {
		return nil, errors.New("failover: no lease store")
	}
	e := &Endpoint{cfg: cfg, store: opts.Store, log: opts.Logger, now: opts.Now, apply: opts.ApplyConfig}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("failover", cfg.Name, "role", cfg.Role.String())
	if e.now == nil {
		e.now = time.Now
	}
	lo := opts.Layout
	if lo == nil {
		lo = &Layout{}
	}
	e.layout.Store(lo)
	m, err := openRelationship(cfg.StateDir, cfg.Name, e.log)
	if err != nil {
		return nil, err
	}
	e.meta = m
	owners, err := m.loadPools()
	if err != nil {
		m.close()
		return nil, fmt.Errorf("reading delegation pool owners: %w", err)
	}
	e.pools = newPools(cfg.Role, owners)
	e.rep = newReplicator(e, cfg.QueueSize)
	e.jrnl, err = openJournal(filepath.Join(cfg.StateDir, "failover.journal"), e.log, e.rep.replay(), e.rep.snapshot)
	if err != nil {
		m.close()
		return nil, err
	}
	e.syncs = newSyncer(e)
	if err := e.restore(); err != nil {
		e.jrnl.close()
		m.close()
		return nil, err
	}
	e.txids.Store(rand.Uint32() & 0xffffff)
	return e, nil
}

// stateFiles are the files of a relationship's state in the state dir.
var stateFiles = []string{"failover.db", "failover.journal"}

// openRelationship opens failover.db for the relationship name. The state
// belongs to one relationship (RFC 8156 §6.2: the name is part of the
// endpoint's identity): if the files are another relationship's, they are
// set aside as FILE.OLDNAME, and the state of name is taken back from
// FILE.NAME if it was set aside before (else the endpoint starts afresh).
// A database that names no relationship (written by an earlier version)
// is adopted.
func openRelationship(dir, name string, log *slog.Logger) (*meta, error) {
	path := filepath.Join(dir, "failover.db")
	m, err := openMeta(path)
	if err != nil {
		return nil, err
	}
	old, err := m.loadName()
	if err != nil {
		m.close()
		return nil, fmt.Errorf("reading failover database %s: %w", path, err)
	}
	if old != "" && old != name {
		m.close()
		restored := false
		for _, f := range stateFiles {
			p := filepath.Join(dir, f)
			if err := os.Rename(p, p+"."+old); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("setting aside the failover state of %q: %w", old, err)
			}
			if err := os.Rename(p+"."+name, p); err == nil {
				restored = true
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("taking back the failover state of %q: %w", name, err)
			}
		}
		log.Warn("failover: the relationship name changed; the previous relationship's state is set aside",
			"previous", old, "kept-as", path+"."+old, "earlier-state-restored", restored)
		if m, err = openMeta(path); err != nil {
			return nil, err
		}
	}
	if old != name {
		if err := m.saveName(name); err != nil {
			m.close()
			return nil, fmt.Errorf("writing failover database %s: %w", path, err)
		}
	}
	return m, nil
}

// restore loads the persisted state and enters STARTUP (§8.2, §8.3.2).
func (e *Endpoint) restore() error {
	p, found, err := e.meta.loadState()
	if err != nil {
		return err
	}
	now := e.now()
	if !found {
		p = persisted{Previous: Recover, MCLT: Duration(e.cfg.MCLT)}
		if e.cfg.Role == Primary {
			// §8.2: a primary with no stored state starts in PARTNER-DOWN
			// (it is live at once), a secondary in RECOVER.
			p.Previous = PartnerDown
			p.PartnerDownTime = now
		}
	} else {
		p.Previous = afterCommFailure(p.State)
		p.FailureTime = p.LastOperation
	}
	if p.MCLT <= 0 || e.cfg.Role == Primary {
		p.MCLT = Duration(e.cfg.MCLT)
	}
	p.State, p.Since = Startup, now
	e.p = p
	e.lastRun = p.LastOperation
	e.hadContact = p.Communicated
	e.startupUntil = now.Add(e.cfg.StartupTime)
	e.cur.Store(uint32(Startup))
	e.mclt.Store(int64(p.MCLT))
	e.pdt.Store(nanos(p.PartnerDownTime))
	e.lastContact.Store(nanos(p.LastContact))
	e.log.Info("failover endpoint starting", "previous-state", p.Previous, "stored", found)
	return nil
}

// SetLayout swaps in the prefixes of a new configuration. In NORMAL the
// delegation pools are rebalanced at once (the secondary asks with
// POOLREQ), so new pools are split without waiting for a reconnection.
func (e *Endpoint) SetLayout(lo *Layout) {
	e.layout.Store(lo)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.p.State != Normal || !e.commOK {
		return
	}
	if e.cfg.Role == Secondary {
		e.sendLocked(&Message{Type: MsgPoolReq, TxID: e.nextTxID()})
		return
	}
	e.rebalanceLocked()
}

// State returns the current endpoint state.
func (e *Endpoint) State() State { return State(e.cur.Load()) }

// Role returns the endpoint's role.
func (e *Endpoint) Role() Role { return e.cfg.Role }

// MCLT returns the MCLT in use.
func (e *Endpoint) MCLT() time.Duration { return time.Duration(e.mclt.Load()) }

// Run serves the relationship until ctx ends: the primary connects (and
// reconnects) to the secondary, the secondary listens for the primary.
func (e *Endpoint) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.timers(ctx) }()
	var err error
	if e.cfg.Role == Primary {
		e.dialLoop(ctx)
	} else {
		err = e.listen(ctx)
	}
	cancel()
	wg.Wait()
	e.mu.Lock()
	e.p.LastOperation = e.now()
	e.persistLocked()
	e.mu.Unlock()
	return err
}

// Close flushes and closes the endpoint's files. Call it after Run
// returned.
func (e *Endpoint) Close() error {
	return errors.Join(e.jrnl.close(), e.meta.close())
}

// dialLoop connects to the secondary, retrying with backoff.
func (e *Endpoint) dialLoop(ctx context.Context) {
	backoff := time.Second
	lastErr := ""
	for ctx.Err() == nil {
		c, err := e.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if msg := err.Error(); msg != lastErr {
				e.log.Info("cannot connect to the failover partner; retrying", "peer", e.cfg.Peer, "err", err)
				lastErr = msg
			} else {
				e.log.Debug("connecting to the partner", "peer", e.cfg.Peer, "err", err, "retry-in", backoff)
			}
			var rj *rejectedError
			wait := backoff
			if errors.As(err, &rj) {
				wait = 4 * backoff // rejected: try less often (§6.1)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff, lastErr = time.Second, ""
		e.serveConn(ctx, c)
	}
}

// listen accepts the primary's connections, refusing any other peer.
func (e *Endpoint) listen(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", e.cfg.Local)
	if err != nil {
		return fmt.Errorf("failover: listening on %s: %w", e.cfg.Local, err)
	}
	e.log.Info("failover listening", "local", ln.Addr())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	peerIPs := e.peerAddrs(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("failover: accepting: %w", err)
		}
		if !e.knownPeer(nc.RemoteAddr(), peerIPs) {
			e.log.Warn("refusing failover connection from an unknown peer", "from", nc.RemoteAddr())
			e.stats.refused.Add(1)
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.accept(ctx, nc)
			if err != nil {
				e.log.Warn("failover connection refused", "from", nc.RemoteAddr(), "err", err)
				return
			}
			e.serveConn(ctx, c)
		}()
	}
}

// peerAddrs resolves the configured peer to its addresses.
func (e *Endpoint) peerAddrs(ctx context.Context) []netip.Addr {
	host, _, err := net.SplitHostPort(e.cfg.Peer)
	if err != nil {
		host = e.cfg.Peer
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		e.log.Warn("resolving the failover peer", "peer", host, "err", err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips
}

func (e *Endpoint) knownPeer(a net.Addr, peers []netip.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap().WithZone("")
	for _, p := range peers {
		if p.WithZone("") == ip {
			return true
		}
	}
	return false
}

// serveConn runs an established connection until it ends.
func (e *Endpoint) serveConn(ctx context.Context, c *conn) {
	e.attach(c)
	c.run(ctx)
	e.detach(c)
}

// nextTxID returns a fresh 24-bit transaction-id, never 0 nor the id of
// our outstanding UPDREQ/UPDREQALL (§5.4).
func (e *Endpoint) nextTxID() uint32 {
	for {
		id := e.txids.Add(1) & 0xffffff
		if id != 0 && id != e.reqID.Load() {
			return id
		}
	}
}

// timers drives the time-based transitions and housekeeping.
func (e *Endpoint) timers(ctx context.Context) {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.tick()
		}
	}
}

func (e *Endpoint) tick() {
	now := e.now()
	e.mu.Lock()
	switch e.p.State {
	case Startup:
		if !now.Before(e.startupUntil) {
			e.log.Info("failover startup ended without the partner", "state", e.p.Previous)
			e.setStateLocked(e.p.Previous)
		}
	case RecoverWait:
		if !now.Before(e.recoverUntil) {
			e.setStateLocked(RecoverDone)
		}
	case CommInterrupted:
		if e.cfg.AutoPartnerDown > 0 && !e.autoPDAt.IsZero() && !now.Before(e.autoPDAt) {
			e.log.Warn("automatic partner-down: the partner has been unreachable too long",
				"after", e.cfg.AutoPartnerDown)
			e.enterPartnerDownLocked(now)
		}
	}
	if now.Sub(e.lastOpSaved) >= 5*time.Second {
		e.p.LastOperation = now
		e.persistLocked()
		e.lastOpSaved = now
	}
	c := e.conn
	e.mu.Unlock()
	if c != nil {
		if d := e.rep.oldestUnacked(now); d > e.cfg.Keepalive {
			c.fail(fmt.Errorf("a BNDUPD has waited %s for its BNDREPLY", d.Round(time.Second)))
		}
	}
}

// persistLocked writes the state to stable storage.
func (e *Endpoint) persistLocked() {
	if lc := e.lastContact.Load(); lc != 0 {
		e.p.LastContact = timeOfNanos(lc)
	}
	if err := e.meta.saveState(e.p); err != nil {
		e.log.Error("persisting failover state", "err", err)
	}
}

// setStateLocked moves to s: it persists the change, tells the partner,
// and starts what s starts (§8.1).
func (e *Endpoint) setStateLocked(s State) {
	if s == e.p.State {
		return
	}
	now := e.now()
	old := e.p.State
	if old != Startup {
		e.p.Previous = old
	}
	e.p.State, e.p.Since = s, now
	e.p.LastOperation = now
	e.history = append(e.history, Transition{From: old.String(), To: s.String(), At: now})
	if len(e.history) > historyLen {
		e.history = e.history[len(e.history)-historyLen:]
	}
	e.persistLocked()
	e.cur.Store(uint32(s))
	switch {
	case s == CommInterrupted && old == Normal, s == ResolutionInterrupted:
		e.log.Warn("failover: partner unreachable", "state", s, "from", old)
	default:
		e.log.Info("failover state changed", "state", s, "from", old, "partner", e.p.PartnerState)
	}
	switch s {
	case CommInterrupted:
		e.autoPDAt = time.Time{}
		if e.cfg.AutoPartnerDown > 0 {
			e.autoPDAt = now.Add(e.cfg.AutoPartnerDown)
		}
	case RecoverWait:
		base := e.p.FailureTime
		if base.IsZero() {
			base = e.startupUntil.Add(-e.cfg.StartupTime)
		}
		e.recoverUntil = base.Add(e.MCLT())
		if !e.hadContact && !e.partnerEverRan {
			e.recoverUntil = now // never ran failover: no need to wait (§8.6.2)
		}
	case Normal:
		if e.cfg.Role == Secondary && e.commOK {
			e.sendLocked(&Message{Type: MsgPoolReq, TxID: e.nextTxID()})
		}
	case PotentialConflict:
		if e.cfg.Role == Primary && e.commOK {
			e.requestUpdatesLocked(e.lostStorage())
		}
	}
	if e.commOK {
		e.sendStateLocked()
	}
	if sendsLazily(s) {
		e.rep.rescan() // §8.8: entering NORMAL sends every unacknowledged update
	}
}

func (e *Endpoint) sendLocked(m *Message) {
	if e.conn != nil {
		e.conn.send(m)
	}
}

// sendStateLocked sends a STATE message (§6.3).
func (e *Endpoint) sendStateLocked() {
	st, flags := e.p.State, uint8(0)
	if e.hadContact {
		flags |= FlagCommunicated
	}
	if st == Startup {
		st, flags = e.p.Previous, flags|FlagStartup
	}
	if e.partnerFlags&FlagStartup != 0 {
		flags |= FlagAckStartup
	}
	os := OptionList{OptU8(OptServerState, uint8(st)), OptU8(OptServerFlags, flags),
		OptTime(OptStartTimeOfState, e.p.Since)}
	if st == PartnerDown {
		os = append(os, OptTime(OptPartnerDownTime, e.p.PartnerDownTime))
	}
	e.sendLocked(&Message{Type: MsgState, TxID: e.nextTxID(), Options: os})
}

// requestUpdatesLocked sends UPDREQ (or UPDREQALL) once per connection.
func (e *Endpoint) requestUpdatesLocked(all bool) {
	if e.reqID.Load() != 0 || e.conn == nil {
		return
	}
	t := MsgUpdReq
	if all {
		t = MsgUpdReqAll
	}
	id := e.nextTxID()
	e.reqID.Store(id)
	e.log.Info("failover: asking the partner for its updates", "message", MsgName(t))
	e.sendLocked(&Message{Type: t, TxID: id})
}

// attach makes c the connection and sends our STATE (§6.1).
func (e *Endpoint) attach(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.conn; old != nil {
		old.fail(errors.New("replaced by a new connection from the partner"))
	}
	e.conn, e.commOK = c, false
	e.reqID.Store(0)
	e.hadContact = e.p.Communicated
	if e.cfg.Role == Secondary {
		e.mclt.Store(int64(c.mclt))
		e.p.MCLT = Duration(c.mclt)
	}
	e.p.Communicated = true
	e.persistLocked()
	e.log.Info("failover connected", "peer", c.remote)
	e.sendStateLocked()
}

// detach handles the end of c: communications are no longer OK.
func (e *Endpoint) detach(c *conn) {
	e.rep.connLost(c)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != c {
		return
	}
	e.conn, e.commOK = nil, false
	e.reqID.Store(0)
	e.log.Info("failover disconnected", "peer", c.remote, "reason", c.err())
	if e.p.State != Startup {
		e.setStateLocked(afterCommFailure(e.p.State))
	}
}

// onState handles the partner's STATE message (§6.4, §8).
func (e *Endpoint) onState(c *conn, m *Message) {
	now := e.now()
	ps, ok := m.Options.U8(OptServerState)
	if !ok || ps == 0 || ps > uint8(ConflictDone) {
		c.fail(fmt.Errorf("STATE without a valid server state"))
		return
	}
	flags, _ := m.Options.U8(OptServerFlags)
	since, _ := m.Options.Time(OptStartTimeOfState, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != c {
		return
	}
	e.p.PartnerState, e.p.PartnerSince, e.partnerFlags = State(ps), since, flags
	e.p.LastContact = timeOfNanos(e.lastContact.Load())
	if flags&FlagCommunicated != 0 {
		e.partnerEverRan = true
	}
	e.persistLocked()
	first := !e.commOK
	e.commOK = true
	if first {
		e.rep.start(c)
	}
	if e.p.State == Startup {
		e.leaveStartupLocked()
	}
	if e.p.State == PartnerDown && flags&FlagStartup != 0 {
		return // §8.4.2: ignore a partner in STARTUP
	}
	e.commOKTransitionLocked()
}

// leaveStartupLocked is §8.3.2 step 5.
func (e *Endpoint) leaveStartupLocked() {
	next := e.p.Previous
	if e.p.PartnerState == PartnerDown {
		if e.p.PartnerSince.After(e.lastRun) {
			next = Recover
		} else {
			next = PotentialConflict
		}
	}
	e.setStateLocked(next)
}

// commOKTransitionLocked applies the state machine to the partner's
// state, then the message-driven steps of RECOVER and POTENTIAL-CONFLICT.
func (e *Endpoint) commOKTransitionLocked() {
	ps := e.p.PartnerState
	for range 4 { // a transition may enable another (e.g. PD → PC)
		next := afterCommOK(e.p.State, ps, e.cfg.Role)
		if next == e.p.State {
			break
		}
		e.setStateLocked(next)
	}
	switch e.p.State {
	case Recover:
		e.requestUpdatesLocked(e.lostStorage())
	case PotentialConflict:
		if e.cfg.Role == Primary || ps == ConflictDone {
			e.requestUpdatesLocked(e.lostStorage())
		}
	}
}

// lostStorage reports whether this server has no record of its partner
// while the partner remembers it: its database was lost, so it asks for
// everything (UPDREQALL, §8.5.2).
func (e *Endpoint) lostStorage() bool { return !e.hadContact && e.partnerEverRan }

// onUpdDone handles the partner's UPDDONE for our request.
func (e *Endpoint) onUpdDone(c *conn, m *Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != c || m.TxID == 0 || m.TxID != e.reqID.Load() {
		return
	}
	e.reqID.Store(0)
	e.log.Info("failover: partner's updates received", "state", e.p.State)
	switch e.p.State {
	case Recover:
		e.setStateLocked(RecoverWait)
	case PotentialConflict:
		if e.cfg.Role == Primary {
			e.setStateLocked(ConflictDone)
		} else {
			e.setStateLocked(Normal)
		}
	}
}

// SetPartnerDown is the operator's "the partner is down" (§8.4): the
// endpoint enters PARTNER-DOWN, counting the partner down since at (zero:
// now). It is refused while the partner is reachable.
func (e *Endpoint) SetPartnerDown(at time.Time) error {
	now := e.now()
	if at.IsZero() {
		at = now
	}
	if at.After(now.Add(skew)) {
		return fmt.Errorf("partner-down time %s is in the future", at.Format(time.RFC3339))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.commOK {
		return fmt.Errorf("the partner is reachable (its state is %s): it is not down", e.p.PartnerState)
	}
	e.enterPartnerDownLocked(at)
	return nil
}

func (e *Endpoint) enterPartnerDownLocked(at time.Time) {
	if e.p.State == PartnerDown {
		if at.Before(e.p.PartnerDownTime) {
			e.p.PartnerDownTime = at
			e.pdt.Store(nanos(at))
			e.persistLocked()
		}
		return
	}
	e.p.PartnerDownTime = at
	e.pdt.Store(nanos(at))
	e.setStateLocked(PartnerDown)
}
