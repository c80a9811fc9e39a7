package lease

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashEnv, when set to a database path, turns the test binary into the
// crash test's child: it writes to the store until killed.
const crashEnv = "HOOK6_LEASE_CRASH_DB"

const (
	crashWriters  = 8
	crashPrefixes = 16 // per writer, written over and over
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		os.Exit(crashChild(path))
	}
	code := m.Run()
	for _, dir := range benchDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// crashOp is step j of writer w: a Put of a lease for one of the writer's
// prefixes, or, every third pass over them, a Delete.
func crashOp(w, j int) (p netip.Prefix, l Lease, del bool) {
	l = genLease(w*crashPrefixes + j%crashPrefixes)
	l.IAID = uint32(j) // tells the versions of a prefix apart
	l.Updated = base.Add(time.Duration(j) * time.Millisecond)
	return l.Prefix, l, (j/crashPrefixes)%3 == 2
}

// crashChild writes with fsync from several goroutines and prints "w j"
// for every operation once the store has acknowledged it.
func crashChild(path string) int {
	// Checkpoints every few milliseconds, so that the kill finds some
	// in progress and the reopened store has both bbolt and the log to read.
	s, err := Open(path, Options{checkpointEvery: 3 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				p, l, del := crashOp(w, j)
				if del {
					err = s.Delete(context.Background(), p)
				} else {
					err = s.Put(context.Background(), l)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "%d %d\n", w, j) // one write(2): in the pipe when it returns
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestCrashKeepsAcknowledged SIGKILLs a writing child process mid-stream
// and checks that every operation it acknowledged is on disk, intact.
func TestCrashKeepsAcknowledged(t *testing.T) {
	path := tempDB(t)
	for round := 0; round < 3; round++ { // later rounds start from a crashed file
		acked := runCrashChild(t, path, 400+round*300)
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatalf("round %d: reopening after kill: %v", round, err)
		}
		checkCrash(t, s, acked)
		if s.Corrupt() != 0 {
			t.Fatalf("round %d: %d corrupt records", round, s.Corrupt())
		}
		// Start the next round from a clean slate of known content.
		var all []netip.Prefix
		s.Range(func(l Lease) bool { all = append(all, l.Prefix); return true })
		if err := s.Delete(context.Background(), all...); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

// runCrashChild starts the child, kills it after it acknowledged want
// operations, and returns the last step acknowledged per writer (-1:
// none).
func runCrashChild(t *testing.T, path string, want int) []int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]int, crashWriters)
	for i := range acked {
		acked[i] = -1
	}
	sc := bufio.NewScanner(stdout)
	n := 0
	killed := false
	for sc.Scan() {
		var w, j int
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &w, &j); err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		if j != acked[w]+1 {
			t.Fatalf("writer %d acknowledged step %d after %d", w, j, acked[w])
		}
		acked[w] = j
		if n++; n == want && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true // keep reading what it printed before dying
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !killed || !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended without being killed (%d acks): %v", n, err)
	}
	t.Logf("child acknowledged %d operations before dying", n)
	return acked
}

// checkCrash compares the store with what the child acknowledged. A
// writer has at most one operation in flight (step acked+1), which may or
// may not have committed.
func checkCrash(t *testing.T, s *BoltStore, acked []int) {
	t.Helper()
	allowed := map[netip.Prefix][]*Lease{} // nil entry: absent is allowed
	for w, last := range acked {
		for j := max(0, last-crashPrefixes+1); j <= last+1; j++ {
			p, l, del := crashOp(w, j)
			if j <= last {
				allowed[p] = allowed[p][:0] // a later acked step supersedes
			}
			if del {
				allowed[p] = append(allowed[p], nil)
			} else {
				allowed[p] = append(allowed[p], &l)
			}
		}
	}
	seen := 0
	s.Range(func(got Lease) bool {
		seen++
		for _, l := range allowed[got.Prefix] {
			if l != nil && sameLease(got, *l) == nil {
				return true
			}
		}
		t.Errorf("unexpected lease on disk: %+v", got)
		return true
	})
	for p, states := range allowed {
		if _, ok := s.Get(p); !ok && !slicesContainsNil(states) {
			t.Errorf("acknowledged lease %s lost", p)
		}
	}
	t.Logf("%d leases after crash, all acknowledged writes intact", seen)
}

func slicesContainsNil(ls []*Lease) bool {
	for _, l := range ls {
		if l == nil {
			return true
		}
	}
	return false
}
