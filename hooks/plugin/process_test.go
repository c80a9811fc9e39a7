package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin/pkg"
)

// openFault starts the fault plugin with o (Path and checksum filled in).
func openFault(t *testing.T, o Options) *Extension {
	t.Helper()
	sum, err := pkg.FileSHA256(faultBin)
	if err != nil {
		t.Fatal(err)
	}
	o.Path, o.SHA256 = faultBin, sum
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 10 * time.Millisecond
	}
	e, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// call runs one point with a deadline, as the chain does, and the env key
// "fault" set to fault.
func call(e *Extension, p hooks.Point, fault string, budget time.Duration) (*hooks.Context, error) {
	c := sampleContext(p)
	if fault != "" {
		c.Env.Set("fault", fault)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	c.Ctx = ctx
	return c, e.Handle(c)
}

// waitRunning waits until a call succeeds again, i.e. the plugin was
// restarted, and returns the new pid.
func waitRunning(t *testing.T, e *Extension, oldPID int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := call(e, hooks.GenerateLease, "", time.Second); err == nil {
			if pid := e.PID(); pid != oldPID && pid != 0 {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("plugin not back after 20s (restarts %d)", e.Restarts())
	return 0
}

func TestExamplePackInstallOpen(t *testing.T) {
	ctx := context.Background()
	points, err := Inspect(ctx, exampleBin)
	if err != nil || !slices.Equal(points, []hooks.Point{hooks.GenerateLease}) {
		t.Fatalf("Inspect: %v %v", points, err)
	}
	archive, m, err := pkg.Pack(exampleBin, pkg.PackOptions{Name: "remoteid-prefix", Version: "1.0.0",
		Points: pointNames(points), OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pkg.Verify(archive); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := pkg.Install(archive, dir, pkg.InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	e, err := OpenInstalled(ctx, dir, "remoteid-prefix", Options{Name: "by-port", Logger: slog.New(slog.DiscardHandler),
		Args: map[string]string{"0a0b0c": "2001:db8:8000:4200::/56, 2001:db8:1::4200", "text:port-9": "2001:db8:8000:900::/56"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Name() != "by-port" || !slices.Equal(e.Points(), []hooks.Point{hooks.GenerateLease}) {
		t.Fatalf("extension %s at %v", e.Name(), e.Points())
	}
	c, err := call(e, hooks.GenerateLease, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Allocation.Candidate.String(); got != "2001:db8:8000:4200::/56" {
		t.Fatalf("remote-id 0a0b0c got %s", got)
	}
	if c.Env.Value("remoteid-prefix.lease") != "2001:db8:8000:4200::/56" {
		t.Fatalf("env %v", c.Env.Map())
	}
	c = sampleContext(hooks.GenerateLease)
	c.Request.Relays[1].RemoteID = []byte("port-9")
	if err := e.Handle(c); err != nil || c.Allocation.Candidate.String() != "2001:db8:8000:900::/56" {
		t.Fatalf("remote-id port-9: %v %v", c.Allocation.Candidate, err)
	}
	if _, err := OpenInstalled(ctx, dir, "remoteid-prefix", Options{Args: map[string]string{}, Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "no remote-ids") {
		t.Fatalf("Open with empty init-args: %v", err)
	}
	_ = m
}

func TestTamperedBinaryIsRefused(t *testing.T) {
	archive, _, err := pkg.Pack(faultBin, pkg.PackOptions{Name: "fault", Version: "1.0.0",
		Points: []string{"generate-lease", "check-lease-acceptable", "lease-state-change", "pre-packet-encode"}, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, err := pkg.Install(archive, dir, pkg.InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := OpenInstalled(context.Background(), dir, "fault@1.0.0", Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("untampered: %v", err)
	}
	e.Close()

	data, err := os.ReadFile(in.Binary)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-100] ^= 0x01
	if err := os.WriteFile(in.Binary, data, 0o755); err != nil {
		t.Fatal(err)
	}
	var rec logRecorder
	_, err = OpenInstalled(context.Background(), dir, "fault", Options{Logger: slog.New(&rec)})
	if !errors.Is(err, pkg.ErrChecksum) || !strings.Contains(err.Error(), "refusing to load") {
		t.Fatalf("tampered binary: %v", err)
	}
	attrs, ok := rec.find("plugin binary does not match the sha256 in its manifest: refusing to load it")
	if !ok || attrs["path"] != in.Binary || attrs["manifest-sha256"] != in.SHA256 || attrs["sha256"] == in.SHA256 {
		t.Fatalf("log line: %v %v", attrs, ok)
	}
}

func TestPointsDeclaredAndUsed(t *testing.T) {
	e := openFault(t, Options{})
	want := []hooks.Point{hooks.GenerateLease, hooks.CheckLeaseAcceptable, hooks.LeaseStateChange, hooks.PrePacketEncode}
	if !slices.Equal(e.Points(), want) {
		t.Fatalf("points %v", e.Points())
	}
	if _, err := call(e, hooks.PostPacketDecode, "", time.Second); err == nil || !strings.Contains(err.Error(), "does not handle") {
		t.Fatalf("undeclared point: %v", err)
	}
	only := openFault(t, Options{Points: []hooks.Point{hooks.PrePacketEncode}})
	if _, err := call(only, hooks.GenerateLease, "", time.Second); err == nil {
		t.Fatal("a point left out of Options.Points was called")
	}
	_, err := Open(context.Background(), Options{Path: faultBin, Unverified: true, Points: []hooks.Point{hooks.PostPacketDecode},
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "does not implement post-packet-decode") {
		t.Fatalf("Open for an undeclared point: %v", err)
	}
}

func TestEveryPointThroughTheProcess(t *testing.T) {
	var rec logRecorder
	e := openFault(t, Options{})
	c, err := call(e, hooks.GenerateLease, "", time.Second)
	if err != nil || c.Allocation.Candidate.String() != "2001:db8:8000::/56" ||
		c.Env.Value("faultplugin.request") != "SOLICIT 0001000102030405 2" {
		t.Fatalf("generate-lease: %v %v %v", err, c.Allocation.Candidate, c.Env.Map())
	}
	c, err = call(e, hooks.CheckLeaseAcceptable, "", time.Second)
	if err != nil || !c.Allocation.Acceptable {
		t.Fatalf("check-lease-acceptable of an even candidate: %v %v", err, c.Allocation.Acceptable)
	}
	c = sampleContext(hooks.CheckLeaseAcceptable)
	c.Allocation.Candidate = netip.MustParsePrefix("2001:db8:8000:101::/64")
	if err := e.Handle(c); err != nil || c.Allocation.Acceptable {
		t.Fatalf("check-lease-acceptable of an odd candidate: %v %v", err, c.Allocation.Acceptable)
	}
	c = sampleContext(hooks.LeaseStateChange)
	c.Log = slog.New(&rec)
	if err := e.Handle(c); err != nil || c.Env.Value("faultplugin.event") != "2001:db8:8000:100::/56 pd 2 offered>leased 168h0m0s" {
		t.Fatalf("lease-state-change: %v %v", err, c.Env.Map())
	}
	if attrs, ok := rec.find("lease changed"); !ok || attrs["plugin"] != e.Name() || attrs["valid"] != "336h0m0s" {
		t.Fatalf("plugin log record: %v %v", attrs, ok)
	}
	c, err = call(e, hooks.PrePacketEncode, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Response
	if !r.PreferenceSet || r.Preference != 255 || !slices.Equal(r.Remove, []uint16{31, 23}) || len(r.Add) != 2 ||
		string(r.Add[1].Data) != "options=2" || c.Env.Value("faultplugin.relay") != "2001:db8:1::1 fe80::2 706f72742d37" {
		t.Fatalf("pre-packet-encode: %+v %v", r, c.Env.Map())
	}
	if _, ok := c.Env.Get("gone"); ok {
		t.Fatal("env key deleted by the plugin is still set")
	}
}

func TestPluginErrorsAreNotFaults(t *testing.T) {
	e := openFault(t, Options{FaultRestart: 1})
	pid := e.PID()
	if _, err := call(e, hooks.GenerateLease, "error", time.Second); err == nil || !strings.Contains(err.Error(), "refused by the plugin") {
		t.Fatalf("error: %v", err)
	}
	if _, err := call(e, hooks.GenerateLease, "panic", time.Second); err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("panic: %v", err)
	}
	if _, err := call(e, hooks.GenerateLease, "drop", time.Second); err == nil || !strings.Contains(err.Error(), "drop may not be set") {
		t.Fatalf("drop at generate-lease: %v", err)
	}
	if _, err := call(e, hooks.GenerateLease, "outside", time.Second); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("lease outside the prefix: %v", err)
	}
	if _, err := call(e, hooks.GenerateLease, "", time.Second); err != nil || e.PID() != pid || e.Restarts() != 0 {
		t.Fatalf("after errors: %v, pid %d → %d, restarts %d", err, pid, e.PID(), e.Restarts())
	}
}

func TestCrashIsRestarted(t *testing.T) {
	var rec logRecorder
	e := openFault(t, Options{Logger: slog.New(&rec)})
	pid := e.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The next call fails because the plugin is gone, not because it ran
	// out of time: it does not wait for the deadline.
	_, err := call(e, hooks.GenerateLease, "", 5*time.Second)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call to a killed plugin: %v", err)
	}
	newPID := waitRunning(t, e, pid)
	if e.Restarts() != 1 {
		t.Fatalf("restarts %d", e.Restarts())
	}
	if attrs, ok := rec.find("plugin failed: restarting it"); !ok || attrs["reason"] != "the plugin process exited" {
		t.Fatalf("crash log line: %v %v", attrs, ok)
	}
	if _, ok := rec.find("plugin restarted"); !ok {
		t.Fatal("no restart log line")
	}

	// A crash inside a call: the call fails, the plugin comes back.
	if _, err := call(e, hooks.GenerateLease, "crash", 5*time.Second); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("crashing call: %v", err)
	}
	waitRunning(t, e, newPID)
}

func TestHangReturnsByTheDeadlineAndRestarts(t *testing.T) {
	e := openFault(t, Options{FaultRestart: 2})
	pid := e.PID()
	for i := 0; i < 2; i++ {
		start := time.Now()
		_, err := call(e, hooks.GenerateLease, "hang", 100*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hanging call %d: %v", i, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("hanging call returned after %v", took) // the plugin sleeps an hour
		}
	}
	waitRunning(t, e, pid)
}

// waitStopped waits until the kernel has stopped pid: kill(SIGSTOP)
// returns before the process stops, and a call sent in between is answered.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// The state follows the command name's closing parenthesis.
		if i := bytes.LastIndexByte(b, ')'); err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("plugin %d did not stop", pid)
}

// A frozen process (SIGSTOP) answers nothing, not even go-plugin's
// shutdown request: calls still end by their deadline, the plugin is
// replaced, and Close does not wait for it for ever.
func TestFrozenProcessIsReplaced(t *testing.T) {
	e := openFault(t, Options{FaultRestart: 2})
	pid := e.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitStopped(t, pid)
	for i := 0; i < 2; i++ {
		if _, err := call(e, hooks.GenerateLease, "", 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d to a frozen plugin: %v", i, err)
		}
	}
	newPID := waitRunning(t, e, pid)
	if alive(pid) {
		t.Fatalf("frozen plugin %d still there after its replacement %d", pid, newPID)
	}
	if err := syscall.Kill(newPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(newPID, syscall.SIGKILL) })
	start := time.Now()
	e.Close()
	if took := time.Since(start); took > 2*stopGrace {
		t.Fatalf("Close of a frozen plugin took %v", took)
	}
	if alive(newPID) {
		t.Fatalf("frozen plugin %d still there after Close", newPID)
	}
}

func TestGarbageRestarts(t *testing.T) {
	e := openFault(t, Options{})
	pid := e.PID()
	for i := 0; i < 3; i++ {
		if _, err := call(e, hooks.CheckLeaseAcceptable, "garbage", time.Second); !errors.Is(err, errGarbage) {
			t.Fatalf("garbage answer %d: %v", i, err)
		}
	}
	waitRunning(t, e, pid)
}

func TestStartFailures(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	cases := map[string]struct {
		o    Options
		want string
	}{
		"init refused": {Options{Path: faultBin, Unverified: true, Args: map[string]string{"refuse": "bad table"}}, "refused its init-args: refusing: bad table"},
		"stdout noise": {Options{Path: faultBin, Unverified: true, Env: []string{"FAULTPLUGIN_NOISE=1"}}, "Unrecognized remote plugin message"},
		"not a plugin": {Options{Path: "/bin/true", Unverified: true}, "starting plugin"},
		"no checksum":  {Options{Path: faultBin}, "want 64 hex digits"},
		"wrong binary": {Options{Path: exampleBin, SHA256: strings.Repeat("ab", 32)}, "refusing to load"},
		"missing":      {Options{Path: filepath.Join(t.TempDir(), "nope"), Unverified: true}, "starting plugin"},
	}
	for name, tc := range cases {
		tc.o.Logger = quiet
		tc.o.StartTimeout = 5 * time.Second
		e, err := Open(context.Background(), tc.o)
		if err == nil {
			e.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestCloseStopsTheProcess(t *testing.T) {
	e := openFault(t, Options{})
	pid := e.PID()
	e.Close()
	if _, err := call(e, hooks.GenerateLease, "", time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call after Close: %v", err)
	}
	if alive(pid) {
		t.Fatalf("plugin process %d still runs after Close", pid)
	}
}

// A SIGTERM to hook6's process group reaches the plugin too: it keeps
// serving until hook6 stops it.
func TestPluginOutlivesSIGTERM(t *testing.T) {
	e := openFault(t, Options{})
	pid := e.PID()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * watchEvery)
	if _, err := call(e, hooks.GenerateLease, "", time.Second); err != nil {
		t.Fatalf("call after SIGTERM: %v", err)
	}
	if e.PID() != pid || e.Restarts() != 0 {
		t.Fatalf("plugin %d replaced by %d (restarts %d) after SIGTERM", pid, e.PID(), e.Restarts())
	}
	e.Close()
	if alive(pid) {
		t.Fatalf("plugin %d still runs after Close", pid)
	}
}

func TestOrphanExits(t *testing.T) {
	// A shell starts the plugin as hook6 would (cookie in the environment)
	// and exits, as a killed hook6 would: the plugin must not live on.
	sh := exec.Command("sh", "-c", `"$0" >/dev/null 2>&1 & echo $!; sleep 0.5`, faultBin)
	sh.Env = []string{handshake.MagicCookieKey + "=" + handshake.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1"}
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("pid %q: %v", out, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	for i := 0; i < 100; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("orphaned plugin %d still runs 10s after its parent exited", pid)
}

// alive reports whether process pid runs: it exists and is not a zombie
// waiting for a parent (init in a container may not reap at once).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}
