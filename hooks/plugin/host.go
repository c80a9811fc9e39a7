package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/plugin/pkg"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// ErrUnavailable is wrapped by the error of a call made while the plugin is
// not running (it crashed and is being restarted).
var ErrUnavailable = errors.New("plugin is not running (restarting)")

// watchEvery is how often a running plugin's process is checked.
const watchEvery = 50 * time.Millisecond

// stopGrace is how long a plugin being stopped may take to exit by itself
// before it is killed.
const stopGrace = 2 * time.Second

// Options configure one plugin extension.
type Options struct {
	// Name of the extension instance, for logs and Name(); default the
	// binary's file name.
	Name string
	// Path of the binary.
	Path string
	// SHA256 of the binary (hex, from its manifest). The binary is
	// refused at every start unless it matches.
	SHA256 string
	// Unverified starts a binary without a checksum (development only).
	Unverified bool
	// Args are the init-args passed to the plugin's Init at every start.
	Args map[string]string
	// Points to call; empty means every point the plugin declares. A
	// point the plugin does not declare is an error.
	Points []hooks.Point
	// Env is the plugin's whole environment (hook6's own is not passed
	// on), e.g. []string{"TZ=UTC"}.
	Env []string
	// Logger receives the plugin's stderr, start/stop/restart lines, and
	// c.Log records of calls made with no c.Log; default slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds a start (process, handshake, Describe, Init);
	// default 10s.
	StartTimeout time.Duration
	// CallTimeout bounds a call whose c.Ctx has no deadline; default 1s.
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart; it
	// doubles while the plugin keeps failing (defaults 100ms and 30s) and
	// starts again from MinBackoff once a plugin ran StableAfter (1m).
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// FaultRestart restarts the plugin after this many calls in a row
	// that got no valid answer (timeouts, transport errors, garbage);
	// default 3, negative never. Errors returned by the point function
	// itself are not faults.
	FaultRestart int
}

func (o Options) withDefaults() (Options, error) {
	if o.Path == "" {
		return o, errors.New("plugin: no binary path")
	}
	if o.Name == "" {
		o.Name = filepath.Base(o.Path)
	}
	if !o.Unverified {
		if b, err := hex.DecodeString(o.SHA256); err != nil || len(b) != sha256.Size {
			return o, fmt.Errorf("plugin %s: sha256 %q: want 64 hex digits (from the manifest)", o.Name, o.SHA256)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	defaults := []struct {
		d *time.Duration
		v time.Duration
	}{{&o.StartTimeout, 10 * time.Second}, {&o.CallTimeout, time.Second}, {&o.MinBackoff, 100 * time.Millisecond},
		{&o.MaxBackoff, 30 * time.Second}, {&o.StableAfter, time.Minute}}
	for _, d := range defaults {
		if *d.d <= 0 {
			*d.d = d.v
		}
	}
	if o.FaultRestart == 0 {
		o.FaultRestart = 3
	}
	return o, nil
}

// Extension is a running plugin as a hooks.Extension. It is safe for
// concurrent use; calls run in parallel over one connection.
type Extension struct {
	o      Options
	log    *slog.Logger
	points []hooks.Point
	mask   uint32 // bit p set when point p is called

	stop   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // watchers and restarts

	mu       sync.Mutex
	inst     *instance // nil while restarting or closed
	closed   bool
	backoff  time.Duration
	restarts int
}

// instance is one started plugin process.
type instance struct {
	client  *goplugin.Client
	cmd     *exec.Cmd
	rpc     pb.ExtensionClient
	pid     int
	points  []hooks.Point
	started time.Time
	faults  atomic.Int32
}

// Open starts the plugin, checks its binary's checksum, handshake and
// declared points, and passes it its init-args.
func Open(ctx context.Context, o Options) (*Extension, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Extension{o: o, log: o.Logger.With("plugin", o.Name), backoff: o.MinBackoff}
	inst, err := e.start(ctx, true)
	if err != nil {
		return nil, err
	}
	if e.points, err = choosePoints(o.Name, inst.points, o.Points); err != nil {
		inst.stop(stopGrace)
		return nil, err
	}
	for _, p := range e.points {
		e.mask |= 1 << p
	}
	e.stop, e.cancel = context.WithCancel(context.Background())
	e.mu.Lock()
	e.inst = inst
	e.watch(inst)
	e.mu.Unlock()
	e.log.Info("plugin started", "path", o.Path, "pid", inst.pid, "points", pointNames(e.points))
	return e, nil
}

// OpenInstalled starts the plugin ref ("name" or "name@version") installed
// in dir, with the checksum from its manifest. The binary must declare
// exactly the manifest's points.
func OpenInstalled(ctx context.Context, dir, ref string, o Options) (*Extension, error) {
	path, m, err := pkg.Resolve(dir, ref)
	if err != nil {
		return nil, err
	}
	o.Path, o.SHA256, o.Unverified = path, m.SHA256, false
	if o.Name == "" {
		o.Name = m.Name
	}
	e, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	declared := e.inst.points
	e.mu.Unlock()
	if want, _ := m.HookPoints(); !samePointSet(declared, want) {
		e.Close()
		return nil, fmt.Errorf("plugin %s declares %v but its manifest says %v: repack it", m.Ref(), pointNames(declared), m.Points)
	}
	return e, nil
}

// Inspect starts the binary at path without checksum or init-args, and
// returns the points it declares (hook6ctl plugin pack uses it).
func Inspect(ctx context.Context, path string) ([]hooks.Point, error) {
	o, err := Options{Path: path, Unverified: true, Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Extension{o: o, log: o.Logger}
	inst, err := e.start(ctx, false)
	if err != nil {
		return nil, err
	}
	inst.stop(stopGrace)
	return inst.points, nil
}

func choosePoints(name string, declared, want []hooks.Point) ([]hooks.Point, error) {
	if len(want) == 0 {
		return declared, nil
	}
	for _, p := range want {
		if !slices.Contains(declared, p) {
			return nil, fmt.Errorf("plugin %s does not implement %s (it declares %v)", name, p, pointNames(declared))
		}
	}
	return slices.Clone(want), nil
}

func samePointSet(a, b []hooks.Point) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func pointNames(ps []hooks.Point) []string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return s
}

// start runs one plugin process: checksum, handshake, Describe and, when
// init is set, Init.
func (e *Extension) start(ctx context.Context, init bool) (*instance, error) {
	timeout := e.o.StartTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	cmd := exec.Command(e.o.Path)
	cmd.Env = slices.Clone(e.o.Env)
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: pluginSets(nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     timeout,
		Logger:           hclogFor(e.log, e.o.Name),
	}
	if !e.o.Unverified {
		sum, _ := hex.DecodeString(e.o.SHA256)
		cfg.SecureConfig = &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := goplugin.NewClient(cfg)
	inst, err := e.connect(ctx, client, timeout, init)
	if err != nil {
		stopProcess(client, cmd, stopGrace)
		return nil, e.startError(err)
	}
	inst.cmd = cmd
	return inst, nil
}

func (e *Extension) connect(ctx context.Context, client *goplugin.Client, timeout time.Duration, init bool) (*instance, error) {
	cp, err := client.Client()
	if err != nil {
		return nil, err
	}
	raw, err := cp.Dispense(dispenseName)
	if err != nil {
		return nil, err
	}
	rpc, ok := raw.(pb.ExtensionClient)
	if !ok {
		return nil, fmt.Errorf("dispensed %T, not an extension client", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("asking for its points: %w", err)
	}
	if int(d.ProtocolVersion) != client.NegotiatedVersion() {
		return nil, fmt.Errorf("it speaks plugin protocol %d after a handshake for %d", d.ProtocolVersion, client.NegotiatedVersion())
	}
	inst := &instance{client: client, rpc: rpc, started: time.Now()}
	for _, s := range d.Points {
		p, err := hooks.ParsePoint(s)
		if err != nil {
			return nil, fmt.Errorf("it declares: %w", err)
		}
		inst.points = append(inst.points, p)
	}
	if len(inst.points) == 0 {
		return nil, errors.New("it declares no points")
	}
	if init {
		ir, err := rpc.Init(ctx, &pb.InitRequest{Args: e.o.Args, Name: e.o.Name})
		if err != nil {
			return nil, fmt.Errorf("passing init-args: %w", err)
		}
		if ir.Error != "" {
			return nil, fmt.Errorf("it refused its init-args: %s", ir.Error)
		}
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	return inst, nil
}

// startError explains a failed start; a checksum mismatch gets its own
// log line, since it means the binary was swapped or tampered with.
func (e *Extension) startError(err error) error {
	if !errors.Is(err, goplugin.ErrChecksumsDoNotMatch) {
		return fmt.Errorf("starting plugin %s (%s): %w", e.o.Name, e.o.Path, err)
	}
	got, herr := pkg.FileSHA256(e.o.Path)
	if herr != nil {
		got = herr.Error()
	}
	e.log.Error("plugin binary does not match the sha256 in its manifest: refusing to load it",
		"path", e.o.Path, "sha256", got, "manifest-sha256", e.o.SHA256)
	return fmt.Errorf("plugin %s: %s: %w: refusing to load it (it is %s, the manifest says %s)",
		e.o.Name, e.o.Path, pkg.ErrChecksum, got, e.o.SHA256)
}

// Name is the extension instance's name.
func (e *Extension) Name() string { return e.o.Name }

// Points are the points Handle serves.
func (e *Extension) Points() []hooks.Point { return slices.Clone(e.points) }

// PID is the plugin process's id, 0 while it is not running.
func (e *Extension) PID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inst == nil {
		return 0
	}
	return e.inst.pid
}

// Restarts counts the plugin's restarts since Open.
func (e *Extension) Restarts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.restarts
}

func (e *Extension) current() *instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inst
}

// Handle calls the plugin's function for c.Point and applies what it
// changed to c. It returns by c.Ctx's deadline (or CallTimeout when c.Ctx
// has none) whatever the plugin does, and at once while the plugin is down.
func (e *Extension) Handle(c *hooks.Context) error {
	if c.Point > 31 || e.mask&(1<<c.Point) == 0 {
		return fmt.Errorf("plugin %s does not handle %s", e.o.Name, c.Point)
	}
	inst := e.current()
	if inst == nil {
		return fmt.Errorf("plugin %s at %s: %w", e.o.Name, c.Point, ErrUnavailable)
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.o.CallTimeout)
		defer cancel()
	}
	log := c.Log
	if log == nil {
		log = e.log
	}
	req, err := encodeRequest(c, minLevel(ctx, log))
	if err != nil {
		return fmt.Errorf("plugin %s at %s: encoding the context: %w", e.o.Name, c.Point, err)
	}
	resp, err := inst.rpc.Handle(ctx, req)
	if err != nil {
		return e.failed(inst, ctx, c.Point, err)
	}
	if len(resp.Logs) > 0 && c.Log != nil {
		log = log.With("plugin", e.o.Name)
	}
	err = applyResponse(c, resp, log)
	if errors.Is(err, errGarbage) {
		e.fault(inst, err.Error())
	} else {
		inst.faults.Store(0)
	}
	if err != nil {
		return fmt.Errorf("plugin %s at %s: %w", e.o.Name, c.Point, err)
	}
	return nil
}

// failed reports a call that got no answer.
func (e *Extension) failed(inst *instance, ctx context.Context, p hooks.Point, err error) error {
	// The plugin's side may see the propagated deadline pass a moment
	// before ours and cancel the call: that too is no answer in time.
	if ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
		e.fault(inst, "no answer in time")
		return fmt.Errorf("plugin %s at %s: no answer in time: %w", e.o.Name, p, context.DeadlineExceeded)
	}
	if inst.client.Exited() {
		e.lost(inst, "the plugin process exited")
	} else {
		e.fault(inst, err.Error())
	}
	return fmt.Errorf("plugin %s at %s: %w", e.o.Name, p, err)
}

// fault counts a call without a valid answer and restarts the plugin after
// FaultRestart of them in a row.
func (e *Extension) fault(inst *instance, reason string) {
	n := inst.faults.Add(1)
	if e.o.FaultRestart > 0 && int(n) >= e.o.FaultRestart {
		e.lost(inst, fmt.Sprintf("%d calls in a row without a valid answer, the last: %s", n, reason))
	}
}

// watch polls inst's process until it exits, is replaced, or Close.
// Called with e.mu held.
func (e *Extension) watch(inst *instance) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			select {
			case <-e.stop.Done():
				return
			case <-t.C:
			}
			if e.current() != inst {
				return
			}
			if inst.client.Exited() {
				e.lost(inst, "the plugin process exited")
				return
			}
		}
	}()
}

// lost takes inst out of service and restarts the plugin in the
// background. Only the first report about an instance counts.
func (e *Extension) lost(inst *instance, reason string) {
	e.mu.Lock()
	if e.inst != inst || e.closed {
		e.mu.Unlock()
		return
	}
	e.inst = nil
	if time.Since(inst.started) >= e.o.StableAfter {
		e.backoff = e.o.MinBackoff
	}
	wait := e.nextBackoff()
	e.wg.Add(1)
	e.mu.Unlock()
	e.log.Error("plugin failed: restarting it", "pid", inst.pid, "reason", reason, "retry-in", wait)
	go e.restart(inst, wait)
}

// nextBackoff returns the wait before the next start and doubles it for
// the one after. Called with e.mu held.
func (e *Extension) nextBackoff() time.Duration {
	wait := e.backoff
	e.backoff = min(2*wait, e.o.MaxBackoff)
	return wait
}

func (e *Extension) restart(old *instance, wait time.Duration) {
	defer e.wg.Done()
	old.stop(0) // it failed: no graceful stop to wait for
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(wait)
		select {
		case <-e.stop.Done():
			t.Stop()
			return
		case <-t.C:
		}
		inst, err := e.start(e.stop, true)
		if err == nil {
			if _, err = choosePoints(e.o.Name, inst.points, e.points); err == nil {
				e.install(inst, attempt)
				return
			}
			inst.stop(stopGrace)
		}
		e.mu.Lock()
		wait = e.nextBackoff()
		e.mu.Unlock()
		e.log.Error("plugin restart failed", "attempt", attempt, "err", err, "retry-in", wait)
	}
}

// install puts a restarted instance in service, unless Close came first.
func (e *Extension) install(inst *instance, attempt int) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		inst.stop(stopGrace)
		return
	}
	e.inst = inst
	e.restarts++
	e.watch(inst)
	e.mu.Unlock()
	e.log.Info("plugin restarted", "pid", inst.pid, "attempt", attempt)
}

// stop ends the instance's process: see stopProcess.
func (inst *instance) stop(grace time.Duration) { stopProcess(inst.client, inst.cmd, grace) }

// stopProcess asks the plugin to exit and kills it if it has not after
// grace (at once when grace is 0). go-plugin's Kill waits for the answer
// to its shutdown request without a deadline, so a plugin that is frozen
// (stopped, deadlocked, swapped out) would hold it, and whoever stops the
// plugin, for ever; killing the process ends that wait.
func stopProcess(client *goplugin.Client, cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Kill()
	}()
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	<-done
}

// Close stops the plugin process (gracefully, then by force after 2s) and
// the restarts.
func (e *Extension) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	inst := e.inst
	e.inst = nil
	e.mu.Unlock()
	e.cancel()
	if inst != nil {
		inst.stop(stopGrace)
	}
	e.wg.Wait()
	return nil
}

var (
	_ hooks.Extension = (*Extension)(nil)
	_ hooks.Closer    = (*Extension)(nil)
)
