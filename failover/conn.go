package failover

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// handshakeTimeout bounds connection set-up: TCP, STARTTLS, TLS, CONNECT.
const handshakeTimeout = 10 * time.Second

// sendQueue bounds the messages waiting for the writer; a partner that
// stops reading fills it and the connection is dropped.
const sendQueue = 4096

// appliers is how many batches of received BNDUPDs are applied at once
// (one is resolved while another commits).
const appliers = 2

// contactsPerKeepalive is FO_CONTACT_PER_KEEPALIVE_TIME (§6.5).
const contactsPerKeepalive = 4

// rejectedError is a connection the partner refused (the primary then
// retries less often, §6.1).
type rejectedError struct {
	code uint16
	msg  string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("partner refused the connection: status %d: %s", e.code, e.msg)
}

// conn is one established connection to the partner.
type conn struct {
	e      *Endpoint
	nc     net.Conn
	br     *bufio.Reader
	remote string

	mclt              time.Duration // the relationship's MCLT (the primary's)
	partnerMaxUnacked int
	sendEvery         time.Duration // FO_SEND_TIME

	out     chan outMsg
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	failure error
	wg      sync.WaitGroup
	upd     chan *Message // received BNDUPDs, for the appliers
}

type outMsg struct {
	m          *Message
	closeAfter bool
}

func newConn(e *Endpoint, nc net.Conn, br *bufio.Reader) *conn {
	return &conn{e: e, nc: nc, br: br, remote: nc.RemoteAddr().String(), out: make(chan outMsg, sendQueue),
		done: make(chan struct{}), upd: make(chan *Message, max(1, e.cfg.MaxUnacked))}
}

// writeNow writes one message directly (only during the handshake, before
// the writer runs).
func writeNow(nc net.Conn, m *Message) error {
	if hasSentTime(m.Type) {
		m.SentTime = ToAbs(time.Now())
	}
	b, err := m.AppendFrame(nil)
	if err != nil {
		return err
	}
	_, err = nc.Write(b)
	return err
}

// dial connects to the secondary and runs the primary's side of the
// handshake (§6.1, RFC 7653 §8.2).
func (e *Endpoint) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	if host, _, err := net.SplitHostPort(e.cfg.Local); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	nc, err := d.DialContext(ctx, "tcp", e.cfg.Peer)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	c, err := e.clientHandshake(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (e *Endpoint) clientHandshake(nc net.Conn) (*conn, error) {
	br := bufio.NewReader(nc)
	if e.cfg.TLS != nil {
		id := e.nextTxID()
		if err := writeNow(nc, &Message{Type: MsgStartTLS, TxID: id}); err != nil {
			return nil, fmt.Errorf("sending STARTTLS: %w", err)
		}
		r, err := ReadMessage(br)
		if err != nil {
			return nil, fmt.Errorf("waiting for the answer to STARTTLS: %w", err)
		}
		if r.Type != MsgReply || r.TxID != id {
			return nil, fmt.Errorf("STARTTLS answered with %s", r)
		}
		if code, msg, ok := r.Options.Status(); ok && code != StatusSuccess {
			return nil, &rejectedError{code: code, msg: "TLS refused: " + msg}
		}
		tc := tls.Client(nc, e.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc, br = tc, bufio.NewReader(tc)
	}
	id := e.nextTxID()
	connect := &Message{Type: MsgConnect, TxID: id, Options: e.connectOptions(e.cfg.MCLT)}
	if err := writeNow(nc, connect); err != nil {
		return nil, fmt.Errorf("sending CONNECT: %w", err)
	}
	r, err := ReadMessage(br)
	if err != nil {
		return nil, fmt.Errorf("waiting for CONNECTREPLY: %w", err)
	}
	if r.Type != MsgConnectReply || r.TxID != id {
		return nil, fmt.Errorf("CONNECT answered with %s", r)
	}
	if code, msg, ok := r.Options.Status(); ok && code != StatusSuccess {
		return nil, &rejectedError{code: code, msg: msg}
	}
	c := newConn(e, nc, br)
	if err := c.negotiate(r.Options); err != nil {
		_ = writeNow(nc, &Message{Type: MsgDisconnect, TxID: e.nextTxID(),
			Options: OptionList{OptStatus(StatusUnspecFail, err.Error())}})
		return nil, err
	}
	if mclt, _ := r.Options.U32(OptMCLT); time.Duration(mclt)*time.Second != e.cfg.MCLT.Truncate(time.Second) {
		msg := fmt.Sprintf("partner's MCLT %ds differs from ours (%s)", mclt, e.cfg.MCLT)
		_ = writeNow(nc, &Message{Type: MsgDisconnect, TxID: e.nextTxID(),
			Options: OptionList{OptStatus(StatusUnspecFail, msg)}})
		return nil, errors.New(msg)
	}
	c.mclt = e.cfg.MCLT
	return c, nil
}

// connectOptions are the options of CONNECT and of an accepting
// CONNECTREPLY (§6.1.1, §6.1.2).
func (e *Endpoint) connectOptions(mclt time.Duration) OptionList {
	return OptionList{
		OptU32(OptProtocolVersion, VersionMajor<<16|VersionMinor),
		OptU32(OptMCLT, secs(mclt)),
		OptU32(OptKeepaliveTime, secs(e.cfg.Keepalive)),
		OptU32(OptMaxUnackedBndUpd, uint32(e.cfg.MaxUnacked)),
		{Code: OptRelationshipName, Data: []byte(e.cfg.Name)},
		OptU16(OptConnectFlags, ConnectFixedPDLength),
	}
}

// negotiate takes the partner's version, keepalive and flow control from
// its CONNECT or CONNECTREPLY.
func (c *conn) negotiate(os OptionList) error {
	v, ok := os.U32(OptProtocolVersion)
	if !ok || v>>16 != VersionMajor {
		return fmt.Errorf("unsupported failover protocol version %d.%d", v>>16, v&0xffff)
	}
	ka, ok := os.U32(OptKeepaliveTime)
	if !ok || ka == 0 {
		return errors.New("no keepalive time")
	}
	c.sendEvery = max(time.Second, time.Duration(ka)*time.Second/contactsPerKeepalive)
	mu, ok := os.U32(OptMaxUnackedBndUpd)
	if !ok || mu == 0 {
		return errors.New("no max-unacked-bndupd")
	}
	c.partnerMaxUnacked = int(min(mu, 1<<16))
	return nil
}

// accept runs the secondary's side of the handshake (§6.1.2, RFC 7653
// §9.1) on a connection from the configured peer.
func (e *Endpoint) accept(ctx context.Context, nc net.Conn) (*conn, error) {
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	c, err := e.serverHandshake(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (e *Endpoint) serverHandshake(nc net.Conn) (*conn, error) {
	br := bufio.NewReader(nc)
	m, err := ReadMessage(br)
	if err != nil {
		return nil, fmt.Errorf("waiting for the first message: %w", err)
	}
	switch {
	case m.Type == MsgStartTLS && e.cfg.TLS == nil:
		_ = writeNow(nc, &Message{Type: MsgReply, TxID: m.TxID,
			Options: OptionList{OptStatus(StatusTLSConnectionRefused, "TLS is not configured (insecure: true)")}})
		return nil, errors.New("the partner asked for TLS but this server is configured without it")
	case m.Type == MsgStartTLS:
		if err := writeNow(nc, &Message{Type: MsgReply, TxID: m.TxID}); err != nil {
			return nil, err
		}
		tc := tls.Server(nc, e.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc, br = tc, bufio.NewReader(tc)
		if m, err = ReadMessage(br); err != nil {
			return nil, fmt.Errorf("waiting for CONNECT: %w", err)
		}
	case e.cfg.TLS != nil:
		return nil, fmt.Errorf("the partner sent %s without STARTTLS but TLS is required", MsgName(m.Type))
	}
	if m.Type != MsgConnect {
		return nil, fmt.Errorf("first message is %s, not CONNECT", MsgName(m.Type))
	}
	refuse := func(code uint16, msg string) (*conn, error) {
		_ = writeNow(nc, &Message{Type: MsgConnectReply, TxID: m.TxID, Options: OptionList{OptStatus(code, msg)}})
		return nil, &rejectedError{code: code, msg: msg}
	}
	if d := time.Until(FromAbs(m.SentTime, time.Now())); d > skew || d < -skew-time.Second {
		return refuse(StatusExcessiveTimeSkew, fmt.Sprintf("clocks differ by %s", d.Round(time.Second)))
	}
	c := newConn(e, nc, br)
	if err := c.negotiate(m.Options); err != nil {
		code := StatusUnspecFail
		if _, ok := m.Options.Get(OptProtocolVersion); ok {
			code = StatusNotSupported
		}
		return refuse(code, err.Error())
	}
	if name, ok := m.Options.Get(OptRelationshipName); ok && string(name) != e.cfg.Name {
		return refuse(StatusConfigurationConflict, fmt.Sprintf("no relationship %q here (ours is %q)", name, e.cfg.Name))
	}
	mclt, ok := m.Options.U32(OptMCLT)
	if !ok || mclt == 0 {
		return refuse(StatusUnspecFail, "no MCLT")
	}
	c.mclt = time.Duration(mclt) * time.Second
	reply := &Message{Type: MsgConnectReply, TxID: m.TxID, Options: e.connectOptions(c.mclt)}
	if err := writeNow(nc, reply); err != nil {
		return nil, fmt.Errorf("sending CONNECTREPLY: %w", err)
	}
	return c, nil
}

// run serves the connection until it fails or ctx ends.
func (c *conn) run(ctx context.Context) {
	c.wg.Add(2 + appliers)
	go func() { defer c.wg.Done(); c.writer() }()
	go func() { defer c.wg.Done(); c.reader() }()
	for range appliers {
		go func() { defer c.wg.Done(); c.e.applier(c) }()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.disconnect(StatusServerShuttingDown, "server shutting down")
		select {
		case <-c.done:
		case <-time.After(time.Second):
			c.fail(ctx.Err())
		}
	}
	c.wg.Wait()
}

// fail ends the connection with err.
func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.failure = err
		c.mu.Unlock()
		close(c.done)
		c.nc.Close()
	})
}

func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// send queues m for the writer; it never blocks.
func (c *conn) send(m *Message) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.out <- outMsg{m: m}:
	default:
		c.fail(errors.New("the partner is not reading: send queue full"))
	}
}

// disconnect sends DISCONNECT (§5.3.10) and closes the connection.
func (c *conn) disconnect(code uint16, msg string) {
	m := &Message{Type: MsgDisconnect, TxID: c.e.nextTxID(), Options: OptionList{OptStatus(code, msg)}}
	select {
	case c.out <- outMsg{m: m, closeAfter: true}:
	case <-c.done:
	}
}

// writer writes queued messages, batching what is waiting into one flush,
// and sends CONTACT when nothing else went out for FO_SEND_TIME (§6.6).
func (c *conn) writer() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	tick := time.NewTicker(max(100*time.Millisecond, c.sendEvery/4))
	defer tick.Stop()
	last := time.Now()
	var buf []byte
	write := func(om outMsg) bool {
		m := om.m
		if hasSentTime(m.Type) {
			m.SentTime = ToAbs(time.Now())
		}
		var err error
		if buf, err = m.AppendFrame(buf[:0]); err != nil {
			c.e.log.Error("failover: message not sent", "message", m.String(), "err", err)
			return true
		}
		if _, err := bw.Write(buf); err != nil {
			c.fail(fmt.Errorf("writing to the partner: %w", err))
			return false
		}
		return true
	}
	flush := func() bool {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.e.cfg.Keepalive))
		if err := bw.Flush(); err != nil {
			c.fail(fmt.Errorf("writing to the partner: %w", err))
			return false
		}
		last = time.Now()
		return true
	}
	for {
		select {
		case <-c.done:
			return
		case om := <-c.out:
			closing := om.closeAfter
			if !write(om) {
				return
			}
		drain:
			for !closing {
				select {
				case om = <-c.out:
					closing = om.closeAfter
					if !write(om) {
						return
					}
				default:
					break drain
				}
			}
			if !flush() {
				return
			}
			if closing {
				c.fail(errors.New("disconnected"))
				return
			}
		case now := <-tick.C:
			if now.Sub(last) >= c.sendEvery {
				if !write(outMsg{m: &Message{Type: MsgContact, TxID: c.e.nextTxID()}}) || !flush() {
					return
				}
			}
		}
	}
}

// reader reads and dispatches messages; silence longer than the keepalive
// time ends the connection (§6.6).
func (c *conn) reader() {
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.e.cfg.Keepalive))
		m, err := ReadMessage(c.br)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("nothing heard from the partner for %s", c.e.cfg.Keepalive)
			}
			c.fail(err)
			return
		}
		now := time.Now()
		if d := FromAbs(m.SentTime, now).Sub(now); d > skew+time.Second || d < -skew-time.Second {
			c.e.log.Error("failover: partner's clock differs too much; dropping the connection", "skew", d.Round(time.Second))
			c.fail(fmt.Errorf("time skew %s", d.Round(time.Second)))
			return
		}
		c.dispatch(m)
	}
}

func (c *conn) dispatch(m *Message) {
	e := c.e
	e.lastContact.Store(nanos(e.now()))
	switch m.Type {
	case MsgState:
		e.onState(c, m)
	case MsgContact:
		e.syncs.onContact(c, m)
	case MsgBndUpd:
		// Blocks when the partner exceeds the window we announced: the
		// connection then pushes back (§6.1.1).
		select {
		case c.upd <- m:
		case <-c.done:
		}
	case MsgBndReply:
		e.rep.onReply(c, m)
	case MsgUpdReq, MsgUpdReqAll:
		e.rep.onUpdReq(c, m)
	case MsgUpdDone:
		e.onUpdDone(c, m)
	case MsgPoolReq:
		e.onPoolReq(c, m)
	case MsgPoolResp:
		e.log.Debug("failover: partner accepted the pool request")
	case MsgDisconnect:
		code, msg, _ := m.Options.Status()
		e.log.Info("failover: partner disconnected", "status", code, "message", msg)
		c.fail(fmt.Errorf("partner sent DISCONNECT: %s", msg))
	default:
		e.log.Warn("failover: unexpected message from the partner", "message", m.String())
	}
}
