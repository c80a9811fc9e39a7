package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// benchLeases is n leases shaped like bench/scale_test.go's: 80% addresses
// of a /64, 20% /56s of a /36, every lease its own 14-byte DUID-LLT.
func benchLeases(n int) []lease.Lease {
	ls := make([]lease.Lease, n)
	na := netip.MustParseAddr("2001:db8::1").As16()
	pd := netip.MustParseAddr("2001:db8:8000::").As16()
	for i := range ls {
		var p netip.Prefix
		kind, name := lease.NA, "lan-addr"
		if i%5 == 4 {
			a := pd
			a[4], a[5], a[6] = byte(i>>16), byte(i>>8), byte(i)
			p, kind, name = netip.PrefixFrom(netip.AddrFrom16(a), 56), lease.PD, "lan-pd"
		} else {
			a := na
			a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			p = netip.PrefixFrom(netip.AddrFrom16(a), 128)
		}
		duid := []byte{0, 1, 0, 1, 0x2c, 0x3d, 0x4e, 0x5f, 0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		start := t0.Add(time.Duration(i) * time.Second)
		ls[i] = lease.Lease{Prefix: p, Kind: kind, DUID: duid, IAID: uint32(i), Link: "lan", PrefixName: name,
			State: lease.Leased, Preferred: 12 * time.Hour, Valid: 24 * time.Hour, Start: start, Expires: start.Add(24 * time.Hour)}
	}
	return ls
}

// heapPeak samples the live heap every millisecond until stop is called and
// returns the highest value seen less the heap at the start.
func heapPeak() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		if p := peak.Load(); p > base {
			return p - base
		}
		return 0
	}
}

// BenchmarkLeaseList lists N leases over a unix socket to io.Discard: GET
// /v1/leases read raw ("api"), and hook6ctl lease list as JSON and as a
// table. Under "server" a control server answers from a fake backend; under
// "canned" a plain handler writes the answer rendered beforehand, which
// leaves what hook6ctl itself costs. peak-heap-B is the highest live heap
// (and garbage not yet collected) above the start, in this process, which
// runs the server too.
func BenchmarkLeaseList(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		f := newFake()
		f.leases = benchLeases(n)
		_, sock := startFake(b, f)
		body, err := getBody(sock, "/v1/leases")
		if err != nil {
			b.Fatal(err)
		}
		canned := startCanned(b, body)
		for _, srv := range []struct{ name, sock string }{{"server", sock}, {"canned", canned}} {
			getenv := func(k string) string {
				if k == "HOOK6_SOCKET" {
					return srv.sock
				}
				return ""
			}
			for _, bc := range []struct {
				name string
				run  func(b *testing.B)
			}{
				{"api", func(b *testing.B) {
					if err := rawGet(srv.sock, "/v1/leases"); err != nil {
						b.Fatal(err)
					}
				}},
				{"json", func(b *testing.B) {
					if code := run(context.Background(), []string{"lease", "list", "-o", "json"}, io.Discard, io.Discard, getenv); code != 0 {
						b.Fatalf("exit %d", code)
					}
				}},
				{"table", func(b *testing.B) {
					if code := run(context.Background(), []string{"lease", "list"}, io.Discard, io.Discard, getenv); code != 0 {
						b.Fatalf("exit %d", code)
					}
				}},
			} {
				b.Run(fmt.Sprintf("%s/%s/n=%d", srv.name, bc.name, n), func(b *testing.B) {
					b.ReportAllocs()
					var peak uint64
					for b.Loop() {
						stop := heapPeak()
						bc.run(b)
						peak = max(peak, stop())
					}
					b.ReportMetric(float64(peak), "peak-heap-B")
				})
			}
		}
	}
}

// startCanned serves body as every answer on a unix socket in a temp dir.
func startCanned(tb testing.TB, body []byte) string {
	sock := filepath.Join(tb.TempDir(), "canned.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { srv.Close() })
	return sock
}

// getBody reads path from the control socket.
func getBody(sock, path string) ([]byte, error) {
	var buf bytes.Buffer
	err := get(sock, path, &buf)
	return buf.Bytes(), err
}

// rawGet reads path from the control socket to io.Discard.
func rawGet(sock, path string) error { return get(sock, path, io.Discard) }

// get copies path from the control socket to w.
func get(sock, path string, w io.Writer) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://hook6" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}
