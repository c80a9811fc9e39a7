package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv6"
)

// allDHCP is All_DHCP_Relay_Agents_and_Servers (ff02::1:2).
var allDHCP = net.ParseIP("ff02::1:2")

// batch is how many datagrams one recvmmsg/sendmmsg call moves at most.
const batch = 64

// queuePerWorker bounds the packets waiting for a worker: a packet that
// would wait behind more is dropped on arrival, cheaply, and one that
// waited past maxQueueWait is dropped unhandled. Between the two, a
// server short of CPU answers late rather than not at all: with the
// default 1024 workers, hook6 with four scripts at 12,000 exchanges/s
// (past its CPU) lost none with this queue and 5.3% with a quarter of
// it, answering in up to 420 ms against 390 — well within a client's
// 1 s before it retransmits.
const queuePerWorker = 4

// maxQueueWait is how long a packet may wait for a worker before it is
// dropped unhandled: its client has retransmitted (RFC 8415's first
// retransmission comes after 1 s, less jitter) or moved on by then, and
// answering it would only delay fresher packets.
const maxQueueWait = 500 * time.Millisecond

// Listener is the server's UDP socket: it joins ff02::1:2 on the served
// interfaces, learns each datagram's arrival interface and destination
// from IPV6_PKTINFO, and answers out of the interface a request came in on.
type Listener struct {
	conn   *net.UDPConn
	pc     *ipv6.PacketConn
	ifaces sync.Map // index → name
}

// Listen opens addr (e.g. "[::]:547") and joins the multicast group on each
// named interface.
func Listen(addr string, interfaces []string) (*Listener, error) {
	ua, err := net.ResolveUDPAddr("udp6", addr)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp6", ua)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	l := &Listener{conn: conn, pc: ipv6.NewPacketConn(conn)}
	if err := l.pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
		conn.Close()
		return nil, fmt.Errorf("enabling IPV6_PKTINFO: %w", err)
	}
	if err := l.Join(interfaces); err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

// Join joins ff02::1:2 on each interface (again, after a reload).
func (l *Listener) Join(interfaces []string) error {
	for _, name := range interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
		l.ifaces.Store(ifi.Index, ifi.Name)
		if err := l.pc.JoinGroup(ifi, &net.UDPAddr{IP: allDHCP}); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("joining ff02::1:2 on %s: %w", name, err)
		}
	}
	return nil
}

// LocalAddr is the socket's address.
func (l *Listener) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// Close closes the socket.
func (l *Listener) Close() error { return l.conn.Close() }

func (l *Listener) ifName(index int) string {
	if index == 0 {
		return ""
	}
	if v, ok := l.ifaces.Load(index); ok {
		return v.(string)
	}
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return ""
	}
	l.ifaces.Store(index, ifi.Name)
	return ifi.Name
}

// job is one received datagram on its way to a worker.
type job struct {
	pkt      Packet
	ifindex  int
	buf      []byte
	received time.Time
}

// Serve reads datagrams, hands them to workers running s.Handle, and sends
// the answers, until ctx ends or the socket fails.
func (l *Listener) Serve(ctx context.Context, s *Server, workers int) error {
	if workers < 1 {
		workers = 1
	}
	// Packets already read are finished (committed and answered) even
	// while shutting down: only reading stops with ctx.
	work := context.WithoutCancel(ctx)
	answers := make(chan answer, workers)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		l.send(s, answers)
	}()
	pool := newWorkerPool(workers, workers*queuePerWorker, func(j *job) { l.work(work, s, j, answers) })
	stop := context.AfterFunc(ctx, func() {
		// Wake the reader; workers finish the packets queued, answers
		// included, before the socket closes.
		_ = l.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	err := l.read(ctx, s, pool)
	pool.close()
	close(answers)
	<-sent
	l.conn.Close()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// read receives datagrams in batches (recvmmsg) and queues them; when the
// queue is full the datagram is counted and dropped, never queued without
// bound.
func (l *Listener) read(ctx context.Context, s *Server, pool *workerPool) error {
	msgs := make([]ipv6.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
		msgs[i].OOB = ipv6.NewControlMessage(ipv6.FlagInterface | ipv6.FlagDst)
	}
	for {
		n, err := l.pc.ReadBatch(msgs, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("reading: %w", err)
		}
		now := time.Now()
		for i := 0; i < n; i++ {
			j := l.toJob(&msgs[i])
			j.received = now
			if !pool.submit(j) {
				s.stats.received.Add(1)
				s.stats.Drop(DropOverload)
			}
		}
	}
}

// toJob copies the datagram out of the read buffer: a job waiting for
// a worker, or a worker waiting for its lease write, holds a few hundred
// bytes, not a 64 KiB buffer.
func (l *Listener) toJob(m *ipv6.Message) *job {
	j := &job{buf: bytes.Clone(m.Buffers[0][:m.N])}
	var cm ipv6.ControlMessage
	if err := cm.Parse(m.OOB[:m.NN]); err == nil {
		j.ifindex = cm.IfIndex
		j.pkt.Interface = l.ifName(cm.IfIndex)
		j.pkt.Unicast = cm.Dst != nil && !cm.Dst.IsMulticast()
	}
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		j.pkt.Source = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(j.pkt.Interface), ap.Port())
	}
	j.pkt.Data = j.buf
	return j
}

// answer is one encoded answer on its way out.
type answer struct {
	data    []byte
	dst     *net.UDPAddr
	ifindex int
}

func (l *Listener) work(ctx context.Context, s *Server, j *job, answers chan<- answer) {
	if time.Since(j.received) > maxQueueWait {
		s.stats.received.Add(1)
		s.stats.Drop(DropOverload)
		return
	}
	out := s.Handle(ctx, &j.pkt)
	if out == nil {
		return
	}
	dst := &net.UDPAddr{IP: net.IP(j.pkt.Source.Addr().AsSlice()), Port: int(j.pkt.Source.Port()), Zone: j.pkt.Interface}
	answers <- answer{data: out, dst: dst, ifindex: j.ifindex}
}

// send writes answers, as many per sendmmsg call as are waiting: under
// load one system call carries dozens of answers; when idle, each answer
// leaves at once on its own.
func (l *Listener) send(s *Server, answers <-chan answer) {
	msgs := make([]ipv6.Message, batch)
	for a := range answers {
		n := 0
		for {
			m := &msgs[n]
			m.Buffers, m.Addr, m.OOB = [][]byte{a.data}, a.dst, nil
			if a.ifindex != 0 {
				m.OOB = (&ipv6.ControlMessage{IfIndex: a.ifindex}).Marshal()
			}
			n++
			if n == batch {
				break
			}
			var ok bool
			select {
			case a, ok = <-answers:
			default:
			}
			if !ok {
				break
			}
		}
		l.writeBatch(s, msgs[:n])
	}
}

func (l *Listener) writeBatch(s *Server, msgs []ipv6.Message) {
	for len(msgs) > 0 {
		n, err := l.pc.WriteBatch(msgs, 0)
		if err != nil {
			// The first message failed (e.g. its destination is gone):
			// report it and go on with the rest.
			s.opts.Logger.Warn("sending answer", "to", msgs[0].Addr, "err", err)
			n = 1
		}
		msgs = msgs[n:]
	}
}
