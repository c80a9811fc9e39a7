package labbench

import (
	"net"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, utime 250 and stime 50 ticks.
	stat := "4242 (kea (x) 1) S 1 4242 4242 0 -1 4194560 1017 0 0 0 250 50 0 0 20 0 3 0 12345 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3*time.Second {
		t.Errorf("cpu = %v, want 3s", got)
	}
	if _, err := parseStatCPU("4242 (short) S 1 2"); err == nil {
		t.Error("a short stat line was accepted")
	}
}

func TestCPUTimeOfSelfGrows(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			x += i
		}
		if after, _ := CPUTime(os.Getpid()); after-before >= 50*time.Millisecond {
			return
		}
	}
	t.Fatalf("CPU time did not grow by 50ms while spinning for 5s (x=%d)", x)
}

func TestRSSOfSelf(t *testing.T) {
	before, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	anonBefore, err := RSSAnon(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = 1
	}
	after, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 60<<20 {
		t.Errorf("RSS grew by %d bytes after touching 64 MiB", after-before)
	}
	if anon, _ := RSSAnon(os.Getpid()); anon-anonBefore < 60<<20 || anon > after {
		t.Errorf("anonymous RSS grew by %d bytes after touching 64 MiB (RSS %d, anonymous %d)", anon-anonBefore, after, anon)
	}
	_ = b[len(b)-1]
	if _, err := parseStatusKB("VmRSS:\t12 MB\n", "VmRSS"); err == nil {
		t.Error("a status line in MB was accepted")
	}
}

func TestUDPBound(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	ok, err := udpBound(os.Getpid(), port)
	if err != nil || !ok {
		t.Fatalf("port %d of an open socket: bound=%v err=%v", port, ok, err)
	}
	c.Close()
	if ok, _ := udpBound(os.Getpid(), port); ok {
		t.Errorf("port %d still seen bound after close", port)
	}
}

func TestLoadAvg(t *testing.T) {
	if l, err := LoadAvg(); err != nil || l < 0 {
		t.Fatalf("load %v, err %v", l, err)
	}
}
