package ldapsource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrUnavailable is returned while the directory is unreachable and the
// pool waits before dialling again.
var ErrUnavailable = errors.New("ldap directory unavailable")

// ErrClosed is returned by a closed Source.
var ErrClosed = errors.New("ldap source closed")

// pool holds up to PoolSize connections: a semaphore bounds the searches
// running at once, and idle connections wait on a stack, so the most
// recently used one is reused and no more are opened than the load needs.
// A connection found closed (by the server, or after a network error) is
// dropped and a new one dialled: connections come back on their own after
// the server returns.
type pool struct {
	cfg    Config
	sem    chan struct{}
	closed atomic.Bool
	done   chan struct{}

	mu       sync.Mutex
	idle     []*ldap.Conn
	next     int       // index of the URL that worked last
	failures int       // consecutive failed dials
	until    time.Time // no dialling before this
	lastErr  error

	dials, dialErrors atomic.Uint64
}

func newPool(cfg Config) *pool {
	return &pool{cfg: cfg, sem: make(chan struct{}, cfg.PoolSize), done: make(chan struct{})}
}

// get waits for a free slot and returns a connection. reused tells whether
// the connection was already open (the server may have closed it
// meanwhile; the caller retries once on a fresh one).
func (p *pool) get(ctx context.Context) (c *ldap.Conn, reused bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("waiting for an ldap connection: %w", ctx.Err())
	case <-p.done:
		return nil, false, ErrClosed
	}
	if p.closed.Load() {
		<-p.sem
		return nil, false, ErrClosed
	}
	if c = p.popIdle(); c != nil {
		return c, true, nil
	}
	c, err = p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, false, err
	}
	return c, false, nil
}

// popIdle returns the most recently used open connection, closing any
// the server closed.
func (p *pool) popIdle() *ldap.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !c.IsClosing() {
			return c
		}
		c.Close()
	}
	return nil
}

// put gives the connection back; a bad one is closed.
func (p *pool) put(c *ldap.Conn, bad bool) {
	defer func() { <-p.sem }()
	if bad || p.closed.Load() {
		c.Close()
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// dial connects to the first URL that answers, starting with the one that
// worked last, unless a recent failure asks to wait.
func (p *pool) dial(ctx context.Context) (*ldap.Conn, error) {
	p.mu.Lock()
	if wait := time.Until(p.until); wait > 0 {
		err := p.lastErr
		p.mu.Unlock()
		return nil, fmt.Errorf("%w (retrying in %v): %v", ErrUnavailable, wait.Round(time.Millisecond), err)
	}
	start := p.next
	p.mu.Unlock()

	var errs []error
	n := len(p.cfg.URLs)
	for i := range n {
		idx := (start + i) % n
		p.dials.Add(1)
		c, err := p.dialURL(ctx, p.cfg.URLs[idx])
		if err == nil {
			p.mu.Lock()
			p.next, p.failures, p.until, p.lastErr = idx, 0, time.Time{}, nil
			p.mu.Unlock()
			return c, nil
		}
		p.dialErrors.Add(1)
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	if errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up: that says nothing about the directory.
		return nil, fmt.Errorf("connecting: %w", ctx.Err())
	}
	p.mu.Lock()
	p.failures++
	p.until = time.Now().Add(p.backoff(p.failures))
	p.lastErr = err
	p.mu.Unlock()
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// backoff doubles from 100ms up to MaxBackoff.
func (p *pool) backoff(failures int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < failures && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.cfg.MaxBackoff)
}

// dialURL opens one connection: TCP, TLS (ldaps or StartTLS), bind. The
// whole set-up is bounded by DialTimeout and ctx.
func (p *pool) dialURL(ctx context.Context, raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = ldap.DefaultLdapPort
		if u.Scheme == "ldaps" {
			port = ldap.DefaultLdapsPort
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	raw0, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", raw, err)
	}
	deadline, _ := ctx.Deadline()
	raw0.SetDeadline(deadline)
	nc := raw0
	var tc *tls.Config
	if u.Scheme == "ldaps" || p.cfg.StartTLS {
		if tc, err = p.cfg.TLS.tlsConfig(host); err != nil {
			raw0.Close()
			return nil, err
		}
	}
	if u.Scheme == "ldaps" {
		tlsConn := tls.Client(raw0, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			raw0.Close()
			return nil, fmt.Errorf("TLS with %s: %w", raw, err)
		}
		nc = tlsConn
	}
	c := ldap.NewConn(nc, u.Scheme == "ldaps")
	c.Start()
	c.SetTimeout(p.cfg.Timeout)
	if err := p.setup(c, tc); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	raw0.SetDeadline(time.Time{})
	return c, nil
}

// setup runs StartTLS and the bind on a fresh connection.
func (p *pool) setup(c *ldap.Conn, tc *tls.Config) error {
	if p.cfg.StartTLS {
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("StartTLS: %w", err)
		}
	}
	if p.cfg.BindDN == "" {
		return nil
	}
	pw, err := readPassword(p.cfg.PasswordFile)
	if err != nil {
		return err
	}
	if err := c.Bind(p.cfg.BindDN, pw); err != nil {
		return fmt.Errorf("binding as %s: %w", p.cfg.BindDN, err)
	}
	return nil
}

// close closes the idle connections; those in use are closed when put
// back.
func (p *pool) close() {
	if p.closed.Swap(true) {
		return
	}
	close(p.done)
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}
