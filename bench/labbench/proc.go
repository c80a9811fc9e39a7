package labbench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// Linux fixes it at 100 on every architecture Go supports.
const clockTicks = 100

// CPUTime returns the user and system CPU time the process pid has used so
// far, all its threads included (from /proc/PID/stat).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a stat line.
// The command name (field 2) is in parentheses and may hold spaces, so
// fields are counted from its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line %q: %d fields after the name", stat, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat line: cpu field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// RSS returns the resident set size of the process pid, in bytes (VmRSS
// of /proc/PID/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of %d: %w", pid, err)
	}
	return parseStatusKB(string(b), "VmRSS")
}

// RSSAnon returns the anonymous part of the process's resident memory
// (RssAnon: heap and stacks, not file pages such as a mapped database).
func RSSAnon(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of %d: %w", pid, err)
	}
	return parseStatusKB(string(b), "RssAnon")
}

// parseStatusKB returns the "Key:   N kB" line of a status file in bytes.
func parseStatusKB(status, key string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status line %q: want N kB", line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status line %q: %w", line, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("status has no %s line", key)
}

// LoadAvg returns the machine's 1-minute load average.
func LoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("read load average: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty /proc/loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("load average %q: %w", f[0], err)
	}
	return v, nil
}

// udpBound reports whether the network namespace of process pid has a UDP
// socket bound to port (from /proc/PID/net/udp6).
func udpBound(pid, port int) (bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp6", pid))
	if err != nil {
		return false, fmt.Errorf("read UDP sockets of %d: %w", pid, err)
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasSuffix(f[1], want) {
			return true, nil
		}
	}
	return false, nil
}

// waitUDPPort waits until p's namespace has a socket bound to port.
func waitUDPPort(ctx context.Context, p *lab.Process, port int) error {
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited before binding port %d: %v\n%s", p.Name, port, p.Err(), p.Output())
		}
		if ok, err := udpBound(p.Pid(), port); err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to bind UDP port %d: %w", p.Name, port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
