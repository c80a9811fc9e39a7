package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBudget is the time budget of an extension call when the
// configuration gives none.
const DefaultBudget = 50 * time.Millisecond

// FailureMode says what happens to the packet when an extension call
// panics, returns an error or runs past its budget.
type FailureMode uint8

// The failure modes.
const (
	// FailContinue logs and counts the failure, then carries on with the
	// next extension as if the call had returned nil.
	FailContinue FailureMode = iota
	// FailDrop logs and counts the failure and drops the packet.
	FailDrop
)

// String gives the config name of the mode.
func (m FailureMode) String() string {
	if m == FailDrop {
		return "drop"
	}
	return "continue"
}

// ParseFailureMode reads "continue" (also "") or "drop".
func ParseFailureMode(s string) (FailureMode, error) {
	switch s {
	case "", "continue":
		return FailContinue, nil
	case "drop":
		return FailDrop, nil
	}
	return 0, fmt.Errorf("unknown failure mode %q (want continue or drop)", s)
}

// ErrTimeout is the error of a call that ran past its time budget.
var ErrTimeout = errors.New("time budget exceeded")

// PanicError is the error of a call that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// ExtensionError is what Chain.Run returns when a failing extension's
// failure mode drops the packet.
type ExtensionError struct {
	Extension string
	Point     Point
	Err       error
}

func (e *ExtensionError) Error() string {
	return fmt.Sprintf("extension %s at %s: %v", e.Extension, e.Point, e.Err)
}

func (e *ExtensionError) Unwrap() error { return e.Err }

// Budgeted is implemented by extensions that enforce their time budget
// themselves: scripts run each call on a worker and stop a runaway
// interpreter; built-ins are fast by construction. A Budgeted extension
// returns an error wrapping ErrTimeout when the budget runs out and must not
// touch the Context after returning. The Chain calls any other extension
// inline with Context.Ctx bounded by the budget, so such an extension (a
// plugin making a remote call) must honour Ctx.
type Budgeted interface {
	HandleWithin(c *Context, budget time.Duration) error
}

// Member is one extension of a chain with its budget and failure mode.
type Member struct {
	Extension   Extension
	Budget      time.Duration // 0: DefaultBudget
	FailureMode FailureMode
}

// ExtStats counts the calls of one extension.
type ExtStats struct {
	Calls    uint64 `json:"calls"`
	Errors   uint64 `json:"errors"`
	Panics   uint64 `json:"panics"`
	Timeouts uint64 `json:"timeouts"`
	// Drops counts packets this extension dropped, by setting drop or by
	// failing with failure mode drop.
	Drops   uint64 `json:"drops"`
	TotalNs uint64 `json:"total_ns"` // time spent in calls
	// Own holds the extension's own counters (cache hits, queries, …)
	// when it implements Counting.
	Own map[string]uint64 `json:"own,omitempty"`
}

// Counting is implemented by extensions that keep counters of their own;
// they appear in the chain's Stats (hook6ctl stats, metrics).
type Counting interface {
	Counters() map[string]uint64
}

// member is a Member with its counters.
type member struct {
	ext      Extension
	budgeted Budgeted // nil when the extension is not Budgeted
	budget   time.Duration
	mode     FailureMode
	log      *slog.Logger

	calls, errors, panics, timeouts, drops, ns atomic.Uint64
}

// Chain runs configured extensions in config order at each point, each
// call with its time budget, panic recovery and failure mode. It
// implements Runner. A nil *Chain runs nothing. A Chain is safe for use by
// many goroutines (one per packet at a time).
type Chain struct {
	members []*member
	points  [numPoints][]*member
	log     *slog.Logger
	close   sync.Once
	closed  error
}

// NewChain builds a chain; members run in the order given. Extension names
// must be unique and every point an extension lists must be valid.
func NewChain(members []Member, log *slog.Logger) (*Chain, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch := &Chain{log: log}
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		if m.Extension == nil {
			return nil, fmt.Errorf("extension %d: nil extension", i)
		}
		name := m.Extension.Name()
		if name == "" || seen[name] {
			return nil, fmt.Errorf("extension %d: name %q is empty or used twice", i, name)
		}
		seen[name] = true
		if m.Budget < 0 || m.FailureMode > FailDrop {
			return nil, fmt.Errorf("extension %s: invalid budget %v or failure mode %d", name, m.Budget, m.FailureMode)
		}
		mb := &member{ext: m.Extension, budget: m.Budget, mode: m.FailureMode,
			log: log.With("extension", name)}
		if mb.budget == 0 {
			mb.budget = DefaultBudget
		}
		mb.budgeted, _ = m.Extension.(Budgeted)
		ch.members = append(ch.members, mb)
		for _, p := range m.Extension.Points() {
			if p >= numPoints {
				return nil, fmt.Errorf("extension %s: invalid point %v", name, p)
			}
			ch.points[p] = append(ch.points[p], mb)
		}
	}
	return ch, nil
}

// Has reports whether any extension handles p.
func (ch *Chain) Has(p Point) bool {
	return ch != nil && p < numPoints && len(ch.points[p]) > 0
}

// Run calls the extensions of c.Point in order. It stops early when an
// extension sets drop, at generate-lease when one gives a lease or sets
// skip-lease, and at check-lease-acceptable when one refuses the candidate.
// It returns an *ExtensionError when a failing extension's failure mode
// drops the packet; every other decision is in c.Env, c.Response and
// c.Allocation.
func (ch *Chain) Run(c *Context) error {
	if !ch.Has(c.Point) {
		return nil
	}
	if c.Env == nil {
		c.Env = NewEnv()
	}
	c.Env.AtPoint(c.Point)
	parentCtx, parentLog := c.Ctx, c.Log
	if parentCtx == nil {
		parentCtx = context.Background()
	}
	defer func() { c.Ctx, c.Log = parentCtx, parentLog }()
	for _, m := range ch.points[c.Point] {
		c.Ctx, c.Log = parentCtx, m.log
		if err := ch.call(m, c); err != nil && m.mode == FailDrop {
			m.drops.Add(1)
			return &ExtensionError{Extension: m.ext.Name(), Point: c.Point, Err: err}
		}
		if c.Env.IsTrue(KeyDrop) {
			m.drops.Add(1)
			return nil
		}
		if done(c) {
			return nil
		}
	}
	return nil
}

// done reports whether the point has its answer: a lease or skip-lease at
// generate-lease, a refusal at check-lease-acceptable.
func done(c *Context) bool {
	a := c.Allocation
	switch c.Point {
	case GenerateLease:
		return (a != nil && a.Candidate.IsValid()) || c.Env.IsTrue(KeySkipLease)
	case CheckLeaseAcceptable:
		return a != nil && !a.Acceptable
	}
	return false
}

// call runs one extension with its budget, counts it, logs a failure and
// returns it.
func (ch *Chain) call(m *member, c *Context) error {
	start := time.Now()
	err := m.invoke(c)
	took := time.Since(start)
	m.calls.Add(1)
	m.ns.Add(uint64(took))
	if err == nil && took > m.budget {
		err = fmt.Errorf("%w: the call returned after %v", ErrTimeout, took)
	}
	if err == nil {
		return nil
	}
	var pe *PanicError
	switch {
	case errors.Is(err, ErrTimeout):
		m.timeouts.Add(1)
	case errors.As(err, &pe):
		m.panics.Add(1)
	default:
		m.errors.Add(1)
	}
	m.log.Warn("extension failed", "point", c.Point.String(), "failure-mode", m.mode.String(),
		"took", took, "error", err)
	return err
}

// invoke calls the extension, recovering a panic.
func (m *member) invoke(c *Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if m.budgeted != nil {
		return m.budgeted.HandleWithin(c, m.budget)
	}
	ctx, cancel := context.WithTimeout(c.Ctx, m.budget)
	defer cancel()
	c.Ctx = ctx
	err = m.ext.Handle(c)
	if err == nil && ctx.Err() == context.DeadlineExceeded {
		err = ErrTimeout
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrTimeout) {
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// Names lists the extensions in config order.
func (ch *Chain) Names() []string {
	if ch == nil {
		return nil
	}
	names := make([]string, len(ch.members))
	for i, m := range ch.members {
		names[i] = m.ext.Name()
	}
	return names
}

// Stats returns the counters of every extension by name.
func (ch *Chain) Stats() map[string]ExtStats {
	if ch == nil {
		return map[string]ExtStats{}
	}
	s := make(map[string]ExtStats, len(ch.members))
	for _, m := range ch.members {
		st := ExtStats{
			Calls: m.calls.Load(), Errors: m.errors.Load(), Panics: m.panics.Load(),
			Timeouts: m.timeouts.Load(), Drops: m.drops.Load(), TotalNs: m.ns.Load(),
		}
		if c, ok := m.ext.(Counting); ok {
			st.Own = c.Counters()
		}
		s[m.ext.Name()] = st
	}
	return s
}

// Close closes every extension holding resources, now. Calls still running
// may fail. Close is idempotent.
func (ch *Chain) Close() error {
	if ch == nil {
		return nil
	}
	ch.close.Do(func() {
		var errs []error
		for _, m := range ch.members {
			if cl, ok := m.ext.(Closer); ok {
				if err := cl.Close(); err != nil {
					errs = append(errs, fmt.Errorf("closing extension %s: %w", m.ext.Name(), err))
				}
			}
		}
		ch.closed = errors.Join(errs...)
	})
	return ch.closed
}

// Retire closes the chain after grace, in the background, so packets that
// started with it (a reload swapped in a new chain) finish with it. The
// returned channel receives Close's result.
func (ch *Chain) Retire(grace time.Duration) <-chan error {
	res := make(chan error, 1)
	time.AfterFunc(grace, func() { res <- ch.Close() })
	return res
}
