package core

import (
	"bytes"
	"net"
	"testing"

	"golang.org/x/net/ipv6"
)

// TestToJobCopiesTheDatagram: the reader reuses its 64 KiB buffers for
// the next batch at once, so a queued job holds a copy of just its
// datagram.
func TestToJobCopiesTheDatagram(t *testing.T) {
	l := &Listener{}
	buf := make([]byte, 65536)
	want := []byte{1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 2, 0xde, 0xad}
	copy(buf, want)
	m := &ipv6.Message{Buffers: [][]byte{buf}, N: len(want), Addr: &net.UDPAddr{IP: net.ParseIP("fe80::1"), Port: 546}}
	j := l.toJob(m)
	clear(buf)
	if !bytes.Equal(j.pkt.Data, want) || cap(j.pkt.Data) >= 1024 {
		t.Fatalf("job data %x (cap %d), want a copy %x", j.pkt.Data, cap(j.pkt.Data), want)
	}
	if got := j.pkt.Source.String(); got != "[fe80::1]:546" {
		t.Errorf("source %s", got)
	}
}
