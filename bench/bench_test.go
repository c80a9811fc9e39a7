//go:build labbench

// Package bench is `make bench`: hook6 against Kea (kea-dhcp6, Debian) in
// the same network-namespace lab, stepped up by perfdhcp -6 until either
// loses more than 1% of its exchanges, then hook6's large-store figures
// at a million leases. It is built only with -tags labbench (the Makefile
// passes it), so `go test ./...` never starts it.
//
//	make bench                          the whole run, ~10 minutes
//	make bench BENCH_FLAGS='-bench.runs=kea,hook6 -bench.leases=0'
//
// The table goes to stdout, the figures to bench/results/ as
// <start time>.json and latest.json (see bench/results/README.md).
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/bench/labbench"
	"github.com/hook6/hook6/e2e/lab"
)

var (
	flagStep       = flag.Duration("bench.step", 6*time.Second, "how long perfdhcp runs at each rate")
	flagRates      = flag.String("bench.rates", "2000,4000,6000,8000,10000,12000,14000,16000,18000,20000,22000,25000,30000,40000", "offered rates, ascending (exchanges/s); 2000 apart up to 22000, where both servers stop on 2 cores")
	flagRuns       = flag.String("bench.runs", strings.Join(allRuns, ","), "runs, in order (empty: none, only the scale part): "+strings.Join(allRuns, ", "))
	flagLeases     = flag.Int("bench.leases", 1_000_000, "leases of the scale part (0 skips it)")
	flagKeaThreads = flag.Int("bench.kea-threads", 2, "Kea's thread-pool-size")
	flagKeaQueue   = flag.Int("bench.kea-queue", 1024, "Kea's packet-queue-size (0: Kea's default, 64)")
	flagOut        = flag.String("bench.out", "", "results directory (default: bench/results of the repository)")
	flagAttempts   = flag.Int("bench.attempts", 3, "tries of a rate before a run stops there (the machine may be shared)")
	flagClientRmem = flag.Int("bench.client-rmem", 4<<20, "net.core.rmem_default (bytes) while the bench runs, restored after; perfdhcp's socket gets the default buffer, which it overflows when starved of CPU (0: leave it)")
	flagPerfMode   = flag.String("bench.perfdhcp-mode", "", "perfdhcp -g: single or multi (empty: perfdhcp's default, multi on a multi-core machine)")
	flagProfile    = flag.Bool("bench.profile", true, "profile hook6d (plain and with scripts) for one step at its sustained rate (HOOK6_CPUPROFILE)")
)

// allRuns are the runs in their default order: the IA_NA comparison
// first (the main figure), then hook6's variants, then IA_NA+IA_PD.
// Kea runs with a packet queue of 1024 (-bench.kea-queue): with its
// default of 64, a short stall of its threads on a shared machine drops
// packets while it uses half a core, and with 1024 it sustained 1.2 to 3
// times more. kea-q64 is the stock queue, for reference; hook6 is compared
// with whichever Kea run of the same lease types sustains more.
var allRuns = []string{"kea", "kea-q64", "hook6", "hook6-scripts", "hook6-failover", "kea-ha", "kea-napd", "hook6-napd"}

// The lab: the server's srv0 and perfdhcp's cli0 on one link; for failover
// the partner in a third namespace, reached over fo0/fo1.
const (
	srvIf, cliIf = "srv0", "cli0"
	foIf, peerIf = "fo0", "fo1"
	clients      = 1_000_000
)

var pools = labbench.Pools{
	Interface: srvIf,
	Addr:      mustPrefix("2001:db8:1::/64"),
	PD:        mustPrefix("2001:db8:8000::/40"),
	PDLen:     56,
	Lifetime:  time.Hour,
}

// bench is one `make bench` run.
type bench struct {
	bins  lab.Binaries
	rates []int
	step  time.Duration
	res   *labbench.Result
	repo  string
}

func TestBench(t *testing.T) {
	if err := lab.RequireTools("ip", "sysctl", "perfdhcp", "kea-dhcp6"); err != nil {
		t.Fatal(err)
	}
	b := newBench(t)
	b.ramp(t, strings.Split(*flagRuns, ","))
	if *flagLeases > 0 {
		t.Run("scale", func(t *testing.T) { b.res.Scale = b.scale(t, *flagLeases) })
	}
	b.res.Finished = time.Now()
	b.res.ComputeRatios()
	b.res.WriteTable(os.Stdout)
	path, err := b.res.WriteJSON(b.outDir())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nresults: %s (and latest.json)\n", path)
}

func newBench(t *testing.T) *bench {
	rates, err := parseRates(*flagRates)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := lab.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rmem, err := raiseRmemDefault(t, *flagClientRmem)
	if err != nil {
		t.Fatal(err)
	}
	load, _ := labbench.LoadAvg()
	res := &labbench.Result{
		Started: time.Now(),
		Machine: labbench.Machine{
			Cores: runtime.NumCPU(), Kernel: firstLine(cmdOutput("uname", "-sr")), GoVersion: runtime.Version(),
			Kea: firstLine(cmdOutput("kea-dhcp6", "-v")), Perfdhcp: strings.TrimPrefix(firstLine(cmdOutput("perfdhcp", "-v")), "VERSION: "),
			Commit: firstLine(cmdOutputIn(repo, "git", "describe", "--always", "--dirty")), LoadStart: load,
		},
		Settings: labbench.Settings{
			StepSeconds: flagStep.Seconds(), Rates: rates, Attempts: *flagAttempts, Clients: clients,
			KeaThreads: *flagKeaThreads, KeaQueue: *flagKeaQueue, MaxLossPct: labbench.MaxLoss,
			RmemDefault: rmem,
		},
	}
	fmt.Printf("make bench: %d cores, load %.1f, %s steps, hook6 %s, %s, perfdhcp %s\n",
		res.Machine.Cores, load, *flagStep, res.Machine.Commit, res.Machine.Kea, res.Machine.Perfdhcp)
	return &bench{bins: bins, rates: rates, step: *flagStep, res: res, repo: repo}
}

// raiseRmemDefault sets net.core.rmem_default (and rmem_max, if lower)
// to at least bytes until the test ends, and returns the value in force.
// perfdhcp cannot size its socket's receive buffer, and the kernel only
// lets the initial namespace set the default: with the stock 208 KiB,
// perfdhcp, which takes more CPU than the server it loads (1.5 cores at
// 10,000 exchanges/s here), loses answers in its own socket whenever the
// machine is busy — the server's sent Replies counted as the server's loss.
func raiseRmemDefault(t *testing.T, bytes int) (int, error) {
	const dflt, max = "/proc/sys/net/core/rmem_default", "/proc/sys/net/core/rmem_max"
	read := func(path string) (int, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	cur, err := read(dflt)
	if err != nil || bytes <= cur {
		return cur, err
	}
	for _, path := range []string{max, dflt} {
		old, err := read(path)
		if err != nil {
			return cur, err
		}
		if old >= bytes {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(bytes)), 0o644); err != nil {
			return cur, fmt.Errorf("raising %s: %w", path, err)
		}
		t.Cleanup(func() { os.WriteFile(path, []byte(strconv.Itoa(old)), 0o644) })
	}
	return bytes, nil
}

// profiled are the runs profiled at their sustained rate, and the file
// each profile goes to under the results directory.
var profiled = map[string]string{"hook6": "hook6d-cpu.pprof", "hook6-scripts": "hook6d-scripts-cpu.pprof"}

// setup is one run being ramped: its record, lab and server.
type setup struct {
	name string // as in -bench.runs
	run  labbench.Run
	env  *env
	srv  server
	// maxRate is the highest rate whose step the pools can serve without
	// running out (0: no limit).
	maxRate int
}

// errPoolTooSmall ends a ramp whose next step would exhaust a pool.
var errPoolTooSmall = errors.New("pool too small")

// ramp sets up the named runs, each in a lab of its own, and ramps them
// together (labbench.RampAll), then measures each run's latency at its
// sustained rate and profiles hook6 there.
func (b *bench) ramp(t *testing.T, names []string) {
	var ss []*setup
	for _, name := range names {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		s := b.setup(t, name)
		if s.srv == nil {
			b.res.Runs = append(b.res.Runs, s.run)
			continue
		}
		ss = append(ss, s)
	}
	steps, errs := labbench.RampAll(b.rates, len(ss), *flagAttempts, func(i, rate int) (labbench.Step, error) {
		if m := ss[i].maxRate; m > 0 && rate > m {
			return labbench.Step{}, errPoolTooSmall
		}
		return b.runStep(ss[i].env, ss[i].srv, rate, stepOpts{leases: ss[i].run.Leases})
	}, func(i int, st labbench.Step) { fmt.Println(labbench.StepLine(ss[i].run.Name, st)) })
	for i, s := range ss {
		s.run.Steps = steps[i]
		s.run.Finish()
		if errors.Is(errs[i], errPoolTooSmall) {
			s.run.Note = fmt.Sprintf("stopped below the pool's limit: %d /%d prefixes last %s at %d/s at most",
				pdPoolSize(), pools.PDLen, b.step, s.maxRate)
		} else if errs[i] != nil {
			s.run.Error = errs[i].Error()
			t.Errorf("%s: %v", s.run.Name, errs[i])
		}
	}
	for _, s := range ss {
		b.latencyAt(t, s)
		b.res.Runs = append(b.res.Runs, s.run)
	}
	for _, s := range ss {
		file, ok := profiled[s.name]
		if ok && *flagProfile && s.run.Sustained != nil {
			b.profileAt(t, s, file)
		}
	}
}

// setup prepares the named run; its server is nil when the run cannot be
// made with this build (its record says why).
func (b *bench) setup(t *testing.T, name string) *setup {
	s := &setup{name: name, run: labbench.Run{Name: name, Server: "hook6", Leases: "address-only"}, env: newEnv(t)}
	if strings.HasSuffix(name, "-napd") {
		s.run.Leases = "address-and-prefix"
		// Each step starts from an empty store, so a step may take up to
		// every prefix of the pool (a few clients repeat).
		s.maxRate = int(float64(pdPoolSize()) / b.step.Seconds())
	}
	switch name {
	case "kea", "kea-napd":
		s.run.Server = "kea"
		s.run.Name = fmt.Sprintf("%s (%dt, q%d)", name, *flagKeaThreads, keaQueue(*flagKeaQueue))
		s.srv = keaServer{threads: *flagKeaThreads, queue: *flagKeaQueue}
	case "kea-q64":
		s.run.Server = "kea"
		s.run.Name = fmt.Sprintf("kea (%dt, q64)", *flagKeaThreads)
		s.srv = keaServer{threads: *flagKeaThreads, queue: 64}
	case "hook6", "hook6-napd":
		s.srv = hook6Server{bins: b.bins, cfg: pools.Hook6Config()}
	case "hook6-scripts":
		s.run.Name = "hook6 + 4 scripts"
		s.srv = hook6Server{bins: b.bins, cfg: scriptsConfig(b.repo)}
	case "hook6-failover":
		s.run.Name = "hook6 + failover"
		fs, err := newFailoverServer(s.env, b.bins)
		if err != nil {
			s.run.Note = err.Error()
			fmt.Printf("%-22s not run: %v\n", s.run.Name, err)
			return s
		}
		s.srv = fs
	case "kea-ha":
		s.run.Server = "kea"
		s.run.Name = fmt.Sprintf("kea HA pair (%dt, q%d)", *flagKeaThreads, keaQueue(*flagKeaQueue))
		ks, err := newKeaHAServer(s.env, *flagKeaThreads, *flagKeaQueue)
		if err != nil {
			s.run.Note = err.Error()
			fmt.Printf("%-22s not run: %v\n", s.run.Name, err)
			return s
		}
		s.srv = ks
	default:
		t.Fatalf("unknown run %q (known: %s)", name, strings.Join(allRuns, ", "))
	}
	return s
}

// env is one run's lab: the server's and perfdhcp's namespaces on one
// link; servers are restarted in it for every step.
type env struct {
	l        *lab.Lab
	srv, cli *lab.Netns
}

func newEnv(t *testing.T) *env {
	l := lab.New(t)
	s, c := l.Namespace("srv"), l.Namespace("cli")
	l.Link(s, srvIf, c, cliIf)
	s.AddAddr(srvIf, mustPrefix("2001:db8:1::1/64"))
	s.MustLinkLocal(srvIf)
	c.MustLinkLocal(cliIf)
	return &env{l: l, srv: s, cli: c}
}

// latencyAt runs s's latency step: one more step at its sustained rate,
// with perfdhcp -x t, the ramp's steps being run without it (see
// labbench.Latency).
func (b *bench) latencyAt(t *testing.T, s *setup) {
	err := s.run.MeasureLatency(func(rate int) (labbench.Step, error) {
		st, err := b.runStep(s.env, s.srv, rate, stepOpts{leases: s.run.Leases, timestamps: true})
		if err == nil {
			fmt.Println(labbench.StepLine(s.run.Name+" (latency)", st))
		}
		return st, err
	})
	if err != nil {
		t.Errorf("%s: %v", s.run.Name, err)
	}
}

// profileAt runs one more step of s at its sustained rate with
// HOOK6_CPUPROFILE set, and keeps the profile as file in the results
// directory.
func (b *bench) profileAt(t *testing.T, s *setup, file string) {
	path := filepath.Join(b.outDir(), file)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Errorf("profile step: %v", err)
		return
	}
	st, err := b.runStep(s.env, s.srv, s.run.Sustained.Offered, stepOpts{leases: s.run.Leases, profile: path})
	if err != nil {
		t.Errorf("profile step: %v", err)
		return
	}
	fmt.Println(labbench.StepLine(s.run.Name+" (profiled)", st))
	b.res.Profiles = append(b.res.Profiles, path)
}

func (b *bench) outDir() string {
	if *flagOut != "" {
		return *flagOut
	}
	return filepath.Join(b.repo, "bench", "results")
}

// stepOpts are what a step is run with beyond its rate.
type stepOpts struct {
	leases  string // perfdhcp -e
	profile string // where the server writes a CPU profile ("": none)
	// timestamps runs perfdhcp with -x t, for the latency percentiles,
	// which costs perfdhcp CPU the server would otherwise have.
	timestamps bool
}

// runStep starts a fresh server (empty lease database), offers rate
// exchanges per second for one step, and stops it.
func (b *bench) runStep(e *env, srv server, rate int, o stepOpts) (labbench.Step, error) {
	run, err := srv.start(e, o.profile)
	if err != nil {
		return labbench.Step{}, err
	}
	defer run.stop()
	cpu0, err := run.cpu()
	if err != nil {
		return labbench.Step{}, err
	}
	peer0 := run.peerCPU()
	ctx, cancel := context.WithTimeout(context.Background(), b.step+time.Minute)
	defer cancel()
	srvOver0, err := e.srv.UDP6RcvbufErrors(ctx)
	if err != nil {
		return labbench.Step{}, err
	}
	cliOver0, err := e.cli.UDP6RcvbufErrors(ctx)
	if err != nil {
		return labbench.Step{}, err
	}
	res, err := e.cli.Perfdhcp(ctx, lab.PerfOptions{
		Iface: cliIf, Rate: rate, Clients: clients, Duration: b.step,
		Extra: perfExtra(o.leases, o.timestamps),
	})
	if err != nil {
		return labbench.Step{}, err
	}
	cpu1, err := run.cpu()
	if err != nil {
		return labbench.Step{}, err
	}
	st, err := labbench.NewStep(rate, b.step, res, cpu1-cpu0)
	if err != nil {
		return st, err
	}
	st.PeerCPU = (run.peerCPU() - peer0).Seconds()
	srvOver1, err := e.srv.UDP6RcvbufErrors(ctx)
	if err != nil {
		return st, err
	}
	cliOver1, err := e.cli.UDP6RcvbufErrors(ctx)
	if err != nil {
		return st, err
	}
	st.ServerOverflows, st.ClientOverflows = srvOver1-srvOver0, cliOver1-cliOver0
	st.Load, _ = labbench.LoadAvg()
	return st, nil
}

// perfExtra is perfdhcp's arguments beyond rate, clients and duration;
// with timestamps, -x t (perfdhcp keeps every packet and lists each
// exchange's send and receive times).
func perfExtra(leases string, timestamps bool) []string {
	args := []string{"-e", leases, "-W", "500000"}
	if timestamps {
		args = append(args, "-x", "t")
	}
	if *flagPerfMode != "" {
		args = append(args, "-g", *flagPerfMode)
	}
	return args
}

// keaQueue is the packet-queue-size Kea runs with for flag value q.
func keaQueue(q int) int {
	if q == 0 {
		return 64
	}
	return q
}

// pdPoolSize is how many delegated prefixes the PD pool holds.
func pdPoolSize() int { return 1 << (pools.PDLen - pools.PD.Bits()) }

func parseRates(s string) ([]int, error) {
	var rs []int
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-bench.rates: %q is not a positive rate", f)
		}
		if len(rs) > 0 && r <= rs[len(rs)-1] {
			return nil, fmt.Errorf("-bench.rates: %d after %d; rates must ascend", r, rs[len(rs)-1])
		}
		rs = append(rs, r)
	}
	return rs, nil
}
