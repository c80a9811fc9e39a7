package lease

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const million = 1_000_000

// millionDB builds, once per test binary, a database of a million leases
// (800,000 addresses and 200,000 delegated prefixes of 800,000 clients)
// and returns its path. HOOK6_BENCH_DIR chooses where (default: the
// system temporary directory); the file is kept for the process's
// lifetime only.
var millionDB = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp(os.Getenv("HOOK6_BENCH_DIR"), "hook6-lease-bench-")
	if err != nil {
		return "", err
	}
	benchDirs = append(benchDirs, dir)
	path := filepath.Join(dir, "leases.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		return "", err
	}
	const chunk = 20_000
	ls := make([]Lease, chunk)
	for i := 0; i < million; i += chunk {
		for j := range ls {
			ls[j] = genLease(i + j)
		}
		if err := s.Put(context.Background(), ls...); err != nil {
			return "", err
		}
	}
	return path, s.Close()
})

var benchDirs []string

func openMillion(b *testing.B) *BoltStore {
	b.Helper()
	path, err := millionDB()
	if err != nil {
		b.Fatal(err)
	}
	return openT(b, path)
}

// BenchmarkOpen1M measures a restart: open the file and load a million
// leases into memory.
func BenchmarkOpen1M(b *testing.B) {
	path, err := millionDB()
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	for b.Loop() {
		s := openT(b, path)
		if s.Len() != million {
			b.Fatalf("loaded %d", s.Len())
		}
		s.Close()
	}
	// CPU time (user+system, all threads, GC included) is steadier than
	// wall time on a shared machine.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMemoryPerLease reports what a million loaded leases cost:
// Go heap in use after GC, and the process's anonymous RSS once freed
// memory went back to the OS. The file pages bbolt maps and loading
// touched (file-rss) are page cache the kernel may drop; the file's size
// on disk is reported too.
func BenchmarkMemoryPerLease(b *testing.B) {
	path, err := millionDB()
	if err != nil {
		b.Fatal(err)
	}
	var heap, anon, file float64
	for b.Loop() {
		var before, after runtime.MemStats
		debug.FreeOSMemory()
		runtime.ReadMemStats(&before)
		anon0, file0 := rss(b)
		s := openT(b, path)
		debug.FreeOSMemory()
		runtime.ReadMemStats(&after)
		anon1, file1 := rss(b)
		n := float64(s.Len())
		heap = float64(after.HeapInuse-before.HeapInuse) / n
		anon, file = float64(anon1-anon0)/n, float64(file1-file0)/n
		runtime.KeepAlive(s)
		s.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(heap, "heap-B/lease")
	b.ReportMetric(anon, "anon-rss-B/lease")
	b.ReportMetric(file, "file-rss-B/lease")
	b.ReportMetric(float64(fi.Size())/million, "disk-B/lease")
}

// rss returns the process's anonymous and file-backed resident bytes.
func rss(b *testing.B) (anon, file int64) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "RssAnon: %d kB", &kb); err == nil {
			anon = kb << 10
		}
		if _, err := fmt.Sscanf(line, "RssFile: %d kB", &kb); err == nil {
			file = kb << 10
		}
	}
	return anon, file
}

// sample returns n leases of the million-lease population, scattered.
func sample(n int) []Lease {
	ls := make([]Lease, n)
	for i := range ls {
		ls[i] = genLease(i * 7919 % million)
	}
	return ls
}

func BenchmarkGet1M(b *testing.B) {
	s := openMillion(b)
	defer s.Close()
	ls := sample(1 << 16)
	i := 0
	for b.Loop() {
		if _, ok := s.Get(ls[i&(len(ls)-1)].Prefix); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkByBinding1M(b *testing.B) {
	s := openMillion(b)
	defer s.Close()
	ls := sample(1 << 16)
	bs := make([]Binding, len(ls))
	for i := range ls {
		bs[i] = BindingOf(&ls[i])
	}
	i := 0
	for b.Loop() {
		if len(s.ByBinding(bs[i&(len(bs)-1)])) == 0 {
			b.Fatal("missing")
		}
		i++
	}
}

// BenchmarkOverlapping1M checks candidate /56s against a million leases
// (as the PD allocator does): half are taken, half free.
func BenchmarkOverlapping1M(b *testing.B) {
	s := openMillion(b)
	defer s.Close()
	ps := make([]netip.Prefix, 1<<16)
	for i := range ps {
		ps[i] = pdPrefix(i * 7919 % (2 * million / 5))
	}
	i, found := 0, 0
	for b.Loop() {
		found += len(s.Overlapping(ps[i&(len(ps)-1)]))
		i++
	}
	b.ReportMetric(float64(found)/float64(b.N), "leases/op")
}

// BenchmarkOverlapping1MWide queries a /48: 256 possible /56s.
func BenchmarkOverlapping1MWide(b *testing.B) {
	s := openMillion(b)
	defer s.Close()
	i, found := 0, 0
	for b.Loop() {
		p, _ := pdPrefix(i % (million / 5)).Addr().Prefix(48)
		found += len(s.Overlapping(p))
		i += 7919
	}
	b.ReportMetric(float64(found)/float64(b.N), "leases/op")
}

func BenchmarkExpired1M(b *testing.B) {
	s := openMillion(b)
	defer s.Close()
	now := base.Add(14*24*time.Hour + 1000*time.Second) // the first 1000 expired
	for b.Loop() {
		if n := len(s.Expired(now)); n != 1000 {
			b.Fatalf("expired %d", n)
		}
	}
}

// openSynced opens a store with fsync in a new directory (under
// HOOK6_BENCH_DIR if set) removed at the end of the benchmark.
func openSynced(b *testing.B, pattern string) *BoltStore {
	dir, err := os.MkdirTemp(os.Getenv("HOOK6_BENCH_DIR"), pattern)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	s, err := Open(filepath.Join(dir, "leases.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchPut runs Puts with fsync from b's parallel goroutines and reports
// how many leases each commit carried.
func benchPut(b *testing.B, parallelism int) {
	s := openSynced(b, "hook6-lease-put-")
	defer s.Close()
	var next atomic.Int64
	start := s.commits.Load()
	b.ResetTimer()
	if parallelism == 0 {
		for b.Loop() {
			if err := s.Put(context.Background(), genLease(int(next.Add(1)))); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Put(context.Background(), genLease(int(next.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-start), "leases/commit")
}

// BenchmarkPutSerial is one writer: every Put pays the batch delay and a
// commit of its own.
func BenchmarkPutSerial(b *testing.B) { benchPut(b, 0) }

// BenchmarkPutParallel has 64 writers per CPU sharing commits.
func BenchmarkPutParallel(b *testing.B) { benchPut(b, 64) }

func BenchmarkDecode(b *testing.B) {
	l := genLease(10)
	buf, _ := AppendEncoded(nil, &l)
	for b.Loop() {
		if _, err := decodeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutPaced is a server's load on the store: 256 writers (the
// default workers) putting 12,000 new leases a second between them, fsync
// on. It reports Put latency percentiles, which the log's group flushes
// and the checkpoints' bursts of page writes decide.
func BenchmarkPutPaced(b *testing.B) {
	s := openSynced(b, "hook6-lease-paced-")
	defer s.Close()
	const rate, writers = 12000, 256
	lat := make([]time.Duration, b.N)
	work := make(chan int, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t0 := time.Now()
				if err := s.Put(context.Background(), genLease(i)); err != nil {
					b.Error(err)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if due := start.Add(time.Duration(i) * time.Second / rate); time.Until(due) > 0 {
			time.Sleep(time.Until(due)) // wakes late: those due meanwhile go at once
		}
		work <- i
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
