// Package script runs hook6 extensions written as Go source files,
// interpreted by yaegi: a script imports github.com/hook6/hook6/hooks and
// defines functions named after the points it handles
// (PostPacketDecode(c *hooks.Context) error, GenerateLease, …) and
// optionally Init(args map[string]string) error.
//
// Scripts see a restricted standard library (no os/exec, unsafe, syscall,
// plugin, reflect or runtime; files and network only when the extension's
// Allow says so) and may not start goroutines unless allowed.
//
// Each call has a time budget; a call that runs past it stops the
// script's interpreter, which is then rebuilt from the same source in the
// background. A script that can only wait in interpreted code (loops,
// channel operations, time.Sleep) is called on the caller's goroutine,
// and stopping the interpreter ends a runaway call there. A script
// importing a package that can block in compiled code (sync, os, net…)
// is called on workers of its own instead, so that a call stuck where a
// stop cannot reach it ties up one of those workers, never the caller.
package script

//go:generate go run github.com/traefik/yaegi/cmd/yaegi extract -name script -include ^Key,^(Context|Env|Request|Response|Allocation|IA|IAType|LeaseEvent|Option|Relay|Point|Points|ParsePoint|IANA|IAPD|PostPacketDecode|PreClientLookup|PostClientLookup|GenerateLease|CheckLeaseAcceptable|LeaseStateChange|PrePacketEncode|PostPacketEncode)$ github.com/hook6/hook6/hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/hook6/hook6/hooks"
)

// Symbols holds the yaegi symbols of package hooks, filled by the
// generated file (yaegi extract). It is only read after init.
var Symbols = map[string]map[string]reflect.Value{}

// numPoints is the number of extension points.
var numPoints = len(hooks.Points())

// Options describe one script extension.
type Options struct {
	Name string // extension name; default: the file name
	Path string // the .go file
	// Source, when set, is used instead of reading Path (Path still names
	// the file in messages).
	Source []byte
	// Points the extension is configured for; every one must be defined by
	// the script. Empty: every point the script defines.
	Points []hooks.Point
	Args   map[string]string // given to Init
	Allow  Allow
	// Workers is the number of goroutines running the calls of a script
	// that can block in compiled code (default max(4, 2×GOMAXPROCS));
	// other scripts run on the caller's goroutine.
	Workers int
	// InitTimeout bounds loading and Init (default 5s).
	InitTimeout time.Duration
	// Log receives the script's own log lines and its fmt output.
	Log *slog.Logger
	// Output, when set, receives what the script prints with fmt instead
	// of Log.
	Output io.Writer
}

// Errors a call can return besides the script's own.
var (
	// ErrUnavailable: the script is being rebuilt after a runaway call.
	ErrUnavailable = errors.New("script is being restarted after a runaway call")
	// ErrClosed: the script was closed.
	ErrClosed = errors.New("script is closed")
	// errStopped: the call was cut short because the interpreter was
	// stopped for another call's timeout.
	errStopped = errors.New("call cut short: the script's interpreter was stopped")
)

const (
	// grace is how long a timed-out call may take to notice its
	// interpreter was stopped before its worker is given up.
	grace = 20 * time.Millisecond
	// maxStuck bounds the workers stuck in calls that could not be
	// stopped (blocked in compiled code); no rebuild happens above it.
	maxStuck = 8
	// maxBackoff bounds the wait between attempts to build an interpreter
	// when building fails or too many workers are stuck.
	maxBackoff = 30 * time.Second
)

// Script is a loaded script extension. It implements hooks.Extension,
// hooks.Budgeted and hooks.Closer.
type Script struct {
	opts    Options
	src     *source
	points  []hooks.Point
	log     *slog.Logger
	cur     atomic.Pointer[instance] // serves calls; nil while none is ready
	spare   atomic.Pointer[instance] // standby, swapped in when cur is stopped
	jobs    sync.Pool
	timers  sync.Pool
	stuck   atomic.Int64
	restart atomic.Uint64

	mu      sync.Mutex // guards the fields below and swaps of cur and spare
	closed  bool
	quit    chan struct{} // closed by Close
	filling bool          // a goroutine is building cur or spare
	ready   chan struct{} // closed (and replaced) when cur is set after being nil
}

// Load compiles a script, checks it defines its configured points, runs
// its Init and starts its workers.
func Load(opts Options) (*Script, error) {
	opts = opts.withDefaults()
	src, err := readSource(opts)
	if err != nil {
		return nil, err
	}
	points, err := choosePoints(src, opts.Points)
	if err != nil {
		return nil, err
	}
	s := &Script{opts: opts, src: src, points: points, log: opts.Log, quit: make(chan struct{}), ready: make(chan struct{})}
	s.jobs.New = func() any {
		j := &job{done: make(chan error, 1)}
		j.watch = time.AfterFunc(time.Hour, j.overrun)
		j.watch.Stop()
		return j
	}
	s.timers.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	in, err := s.build(src)
	if err != nil {
		return nil, err
	}
	s.cur.Store(in)
	s.mu.Lock()
	s.startFill()
	s.mu.Unlock()
	return s, nil
}

func (opts Options) withDefaults() Options {
	if opts.Workers <= 0 {
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 5 * time.Second
	}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(filepath.Base(opts.Path), ".go")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return opts
}

// Check compiles a script without running Init and returns the points it
// defines, in pipeline order. Errors are CompileErrors (file:line).
func Check(path string, src []byte, allow Allow) ([]hooks.Point, error) {
	opts := Options{Path: path, Source: src, Allow: allow}.withDefaults()
	s, err := readSource(opts)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	defer close(stop)
	ip, err := compile(s, opts, stop)
	if err != nil {
		return nil, err
	}
	if _, err := functions(ip, s); err != nil {
		return nil, err
	}
	return definedPoints(s), nil
}

// readSource reads and checks the script's source.
func readSource(opts Options) (*source, error) {
	b := opts.Source
	if b == nil {
		var err error
		if b, err = os.ReadFile(opts.Path); err != nil {
			return nil, fmt.Errorf("reading script: %w", err)
		}
	}
	return parse(opts.Path, b, opts.Allow)
}

// definedPoints lists the points src defines a function for.
func definedPoints(src *source) []hooks.Point {
	var ps []hooks.Point
	for _, p := range hooks.Points() {
		if src.funcs[p.FuncName()] {
			ps = append(ps, p)
		}
	}
	return ps
}

// choosePoints returns the configured points, each of which the script
// must define, or every defined point when none is configured.
func choosePoints(src *source, configured []hooks.Point) ([]hooks.Point, error) {
	defined := definedPoints(src)
	if len(configured) == 0 {
		if len(defined) == 0 {
			return nil, CompileErrors{{File: src.file, Msg: "the script defines no point function (PostPacketDecode, GenerateLease, PrePacketEncode, …)"}}
		}
		return defined, nil
	}
	var ps []hooks.Point
	var missing []string
	for _, p := range hooks.Points() {
		if !slices.Contains(configured, p) {
			continue
		}
		if !src.funcs[p.FuncName()] {
			missing = append(missing, fmt.Sprintf("%s (func %s)", p, p.FuncName()))
		}
		ps = append(ps, p)
	}
	if len(missing) > 0 {
		return nil, CompileErrors{{File: src.file, Msg: "configured points not defined by the script: " + strings.Join(missing, ", ")}}
	}
	return ps, nil
}

// compile builds an interpreter with the allowed symbols and evaluates the
// script in it. stop is closed when the interpreter is stopped.
func compile(src *source, opts Options, stop <-chan struct{}) (ip *interp.Interpreter, err error) {
	syms, err := exports(opts.Allow, stop)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(src.file)
	if err != nil {
		abs = src.file
	}
	fsName := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(abs)), "/")
	out := opts.Output
	if out == nil {
		out = &logWriter{log: opts.Log}
	}
	ip = interp.New(interp.Options{
		GoPath:               filepath.Join(os.TempDir(), "hook6-script-no-gopath"),
		Stdin:                strings.NewReader(""),
		Stdout:               out,
		Stderr:               &logWriter{log: opts.Log, names: strings.NewReplacer(fsName, src.file)},
		Args:                 []string{opts.Name},
		Env:                  []string{},
		SourcecodeFilesystem: fstest.MapFS{fsName: {Data: src.src}},
	})
	if err := use(ip, syms); err != nil {
		return nil, err
	}
	if err := use(ip, Symbols); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%s: the interpreter failed: %v", src.file, unwrapPanic(r))
			}
		}()
		_, err := ip.EvalPath(fsName)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(opts.InitTimeout):
		stopInterp(ip)
		return nil, fmt.Errorf("%s: loading took longer than %v", src.file, opts.InitTimeout)
	}
	if err != nil {
		return nil, interpError(src.file, fsName, err)
	}
	return ip, nil
}

// use adds symbols, turning a panic of the interpreter into an error.
func use(ip *interp.Interpreter, syms interp.Exports) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loading symbols: %v", r)
		}
	}()
	return ip.Use(syms)
}

// pointFunc is the type of a point function.
type pointFunc = func(*hooks.Context) error

// functions fetches the script's point functions and Init.
func functions(ip *interp.Interpreter, src *source) (fns []pointFunc, err error) {
	fns = make([]pointFunc, numPoints)
	var errs CompileErrors
	for _, p := range hooks.Points() {
		name := p.FuncName()
		if !src.funcs[name] {
			continue
		}
		v, err := evalSafe(ip, src.pkg+"."+name)
		f, ok := asFunc[pointFunc](v)
		if err != nil || !ok {
			errs = append(errs, &CompileError{File: src.funcPos[name], Msg: fmt.Sprintf("%s must be func %s(c *hooks.Context) error", name, name)})
			continue
		}
		fns[p] = f
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return fns, nil
}

// evalSafe evaluates src, turning a panic of the interpreter into an
// error.
func evalSafe(ip *interp.Interpreter, src string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", unwrapPanic(r))
		}
	}()
	return ip.Eval(src)
}

func asFunc[F any](v reflect.Value) (f F, ok bool) {
	if !v.IsValid() || !v.CanInterface() {
		return f, false
	}
	f, ok = v.Interface().(F)
	return f, ok
}

// unwrapPanic gives the value a script panicked with (the interpreter
// wraps it in a reflect.Value).
func unwrapPanic(r any) any {
	if v, ok := r.(reflect.Value); ok && v.IsValid() && v.CanInterface() {
		return v.Interface()
	}
	return r
}

// stopInterp stops every call running in ip. yaegi has no direct way: a
// cancelled EvalWithContext stops the interpreter; the source given is a
// syntax error, so nothing is compiled or run.
func stopInterp(ip *interp.Interpreter) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if _, err := ip.EvalWithContext(ctx, "("); errors.Is(err, context.Canceled) {
			return
		}
	}
}

// logWriter turns what a script prints into log lines, naming the script's
// file as the user knows it.
type logWriter struct {
	log   *slog.Logger
	names *strings.Replacer
}

func (w *logWriter) Write(b []byte) (int, error) {
	text := strings.TrimRight(string(b), "\n")
	if w.names != nil {
		text = w.names.Replace(text)
	}
	for _, line := range strings.Split(text, "\n") {
		w.log.Info("script output", "text", line)
	}
	return len(b), nil
}

// Name returns the extension name.
func (s *Script) Name() string { return s.opts.Name }

// Points returns the points the extension handles, in pipeline order.
func (s *Script) Points() []hooks.Point { return slices.Clone(s.points) }

// Path returns the script file.
func (s *Script) Path() string { return s.opts.Path }

// Restarts counts the interpreters rebuilt after runaway calls.
func (s *Script) Restarts() uint64 { return s.restart.Load() }

// Handle runs the script's function for c.Point within hooks.DefaultBudget.
func (s *Script) Handle(c *hooks.Context) error { return s.HandleWithin(c, hooks.DefaultBudget) }

// HandleWithin runs the script's function for c.Point on a worker and
// waits at most budget. On timeout it stops the interpreter (every call
// running in it is cut short), puts the standby interpreter in its place
// and returns an error wrapping hooks.ErrTimeout. When no standby is ready
// calls wait for one within their budget, else return ErrUnavailable. A
// panic in the script is returned as *hooks.PanicError.
func (s *Script) HandleWithin(c *hooks.Context, budget time.Duration) error {
	if int(c.Point) >= numPoints {
		return fmt.Errorf("invalid point %v", c.Point)
	}
	if in := s.cur.Load(); in != nil && in.inline {
		return s.callInline(in, c, budget)
	}
	return s.handOff(c, budget)
}

// handOff runs the call on a worker of the current instance, waiting for
// one to be ready within the budget.
func (s *Script) handOff(c *hooks.Context, budget time.Duration) error {
	t := s.timers.Get().(*time.Timer)
	t.Reset(budget)
	defer func() {
		t.Stop()
		s.timers.Put(t)
	}()
	parent := callerCtx(c)
	defer func() { c.Ctx = parent }()
	for {
		in := s.cur.Load()
		if in == nil {
			ready, err := s.waitReady()
			if err != nil {
				return err
			}
			select {
			case <-ready:
				continue
			case <-t.C:
				return fmt.Errorf("%w (waited %v)", ErrUnavailable, budget)
			}
		}
		if in.inline {
			return s.callInline(in, c, budget)
		}
		fn := in.fns[c.Point]
		if fn == nil {
			return nil
		}
		j := s.jobs.Get().(*job)
		j.prepare(c, fn, parent, budget)
		select {
		case in.jobs <- j:
		case <-in.quit:
			// Swapped by a reload or stopped: try the current instance.
			s.jobs.Put(j)
			continue
		case <-t.C:
			// Every worker is busy with calls whose own callers watch their
			// budgets (a worker stuck for good belongs to an interpreter
			// already stopped), so this instance is not at fault.
			s.jobs.Put(j)
			return fmt.Errorf("%w: no worker became free within %v", hooks.ErrTimeout, budget)
		}
		return s.wait(in, j, t, budget)
	}
}

// callInline runs the call on the caller's goroutine, watched by the
// job's timer: past the budget the timer stops the interpreter, which
// cuts the call short, and the standby interpreter takes its place.
func (s *Script) callInline(in *instance, c *hooks.Context, budget time.Duration) error {
	fn := in.fns[c.Point]
	if fn == nil {
		return nil
	}
	parent := callerCtx(c)
	j := s.jobs.Get().(*job)
	j.prepare(c, fn, parent, budget)
	j.in = in
	j.watch.Reset(budget)
	err := call(j)
	c.Ctx = parent
	watched := j.watch.Stop()
	if !j.state.CompareAndSwap(jobRunning, jobDone) {
		// The timer ran out first: wait until it has stopped the
		// interpreter.
		<-j.done
		s.jobs.Put(j)
		return fmt.Errorf("%w: %s did not return within %v", hooks.ErrTimeout, s.opts.Name, budget)
	}
	if watched {
		s.jobs.Put(j) // else the timer's function may still look at j
	}
	if err == nil && in.stopped.Load() {
		err = errStopped
	}
	return err
}

// overrun is the timer function of an inline call: the call ran past its
// budget unless it has just returned.
func (j *job) overrun() {
	if j.state.CompareAndSwap(jobRunning, jobAbandoned) {
		j.ctx.expire(context.DeadlineExceeded)
		j.in.s.abort(j.in, "a call ran past its budget")
		j.done <- nil
	}
}

// wait waits for the job's result or the budget.
func (s *Script) wait(in *instance, j *job, t *time.Timer, budget time.Duration) error {
	select {
	case err := <-j.done:
		s.jobs.Put(j)
		return err
	case <-t.C:
	}
	j.ctx.expire(context.DeadlineExceeded)
	s.abort(in, "a call ran past its budget")
	g := time.NewTimer(grace)
	defer g.Stop()
	select {
	case <-j.done:
		s.jobs.Put(j)
	case <-g.C:
		if j.state.CompareAndSwap(jobRunning, jobAbandoned) {
			// The worker is blocked in compiled code; it no longer runs
			// script code and gives itself up when it returns.
			s.stuck.Add(1)
		} else {
			<-j.done
			s.jobs.Put(j)
		}
	}
	return fmt.Errorf("%w: %s did not return within %v", hooks.ErrTimeout, s.opts.Name, budget)
}

// waitReady returns a channel closed when an interpreter is ready, or
// ErrClosed.
func (s *Script) waitReady() (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.cur.Load() != nil {
		c := make(chan struct{})
		close(c)
		return c, nil
	}
	return s.ready, nil
}

// setCur makes in the interpreter serving calls. s.mu is held.
func (s *Script) setCur(in *instance) {
	was := s.cur.Swap(in)
	if was == nil && in != nil {
		close(s.ready)
		s.ready = make(chan struct{})
	}
}

// abort stops a runaway instance, puts the standby interpreter in its
// place and has a new standby built.
func (s *Script) abort(in *instance, why string) {
	// The standby takes new calls before the stop, which takes a while,
	// cuts short the calls running in in.
	s.mu.Lock()
	if s.cur.Load() == in {
		s.setCur(s.spare.Swap(nil))
	}
	s.mu.Unlock()
	if !in.stop() {
		return
	}
	s.restart.Add(1)
	s.log.Warn("script stopped", "why", why, "file", s.opts.Path)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startFill()
}

// startFill starts building the missing interpreters unless a build is
// already going on. s.mu is held.
func (s *Script) startFill() {
	if !s.filling && !s.closed {
		s.filling = true
		go s.fill()
	}
}

// fill builds interpreters from the script's source until both cur and
// spare are set, waiting between attempts while building fails or too
// many workers are stuck in calls that could not be stopped.
func (s *Script) fill() {
	var delay time.Duration
	for {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-s.quit:
			}
		}
		s.mu.Lock()
		if s.closed || (s.cur.Load() != nil && s.spare.Load() != nil) {
			s.filling = false
			s.mu.Unlock()
			return
		}
		src := s.src
		s.mu.Unlock()
		if s.stuck.Load() >= maxStuck {
			delay = min(max(2*delay, 100*time.Millisecond), maxBackoff)
			continue
		}
		in, err := s.build(src)
		if err != nil {
			s.log.Error("building the script's interpreter failed", "file", s.opts.Path, "error", err)
			delay = min(max(2*delay, 100*time.Millisecond), maxBackoff)
			continue
		}
		delay = 0
		s.mu.Lock()
		switch {
		case s.closed || s.src != src:
			in.close()
		case s.cur.Load() == nil:
			s.setCur(in)
			s.log.Info("script restarted", "file", s.opts.Path)
		case s.spare.Load() == nil:
			s.spare.Store(in)
		default:
			in.close()
		}
		s.mu.Unlock()
	}
}

// Reload reads the script file again, compiles it and runs its Init in a
// new interpreter, then swaps it in. On error (a compile error is
// CompileErrors with file:line) the running interpreter is kept.
func (s *Script) Reload() error {
	opts := s.opts
	opts.Source = nil
	src, err := readSource(opts)
	if err != nil {
		return err
	}
	if _, err := choosePoints(src, s.points); err != nil {
		return err
	}
	in, err := s.build(src)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		in.close()
		return ErrClosed
	}
	s.src = src
	old := s.cur.Load()
	s.setCur(in)
	if old != nil {
		old.close()
	}
	if old := s.spare.Swap(nil); old != nil {
		old.close()
	}
	s.startFill()
	return nil
}

// Close stops the workers once their current calls return. Later calls
// return ErrClosed.
func (s *Script) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.quit)
	close(s.ready)
	for _, p := range []*atomic.Pointer[instance]{&s.cur, &s.spare} {
		if in := p.Swap(nil); in != nil {
			in.close()
		}
	}
	return nil
}

// build compiles src in a new interpreter, fetches its functions, starts
// its workers and runs Init.
func (s *Script) build(src *source) (*instance, error) {
	in := &instance{s: s, jobs: make(chan *job), quit: make(chan struct{}), halt: make(chan struct{}), inline: src.blocking == ""}
	ip, err := compile(src, s.opts, in.halt)
	if err != nil {
		return nil, err
	}
	in.ip = ip
	if in.fns, err = functions(ip, src); err != nil {
		return nil, err
	}
	if !in.inline {
		for range s.opts.Workers {
			go in.work()
		}
	}
	if src.hasInit {
		if err := s.runInit(in, src); err != nil {
			in.stop()
			return nil, err
		}
	}
	return in, nil
}

// runInit calls the script's Init on a goroutine of its own within
// InitTimeout.
func (s *Script) runInit(in *instance, src *source) error {
	v, err := evalSafe(in.ip, src.pkg+".Init")
	init, ok := asFunc[func(map[string]string) error](v)
	if err != nil || !ok {
		return &CompileError{File: src.funcPos["Init"], Msg: "Init must be func Init(args map[string]string) error"}
	}
	args := make(map[string]string, len(s.opts.Args))
	for k, val := range s.opts.Args {
		args[k] = val
	}
	j := &job{done: make(chan error, 1), fn: func(*hooks.Context) error { return init(args) }}
	go in.run(j)
	select {
	case err := <-j.done:
		if err != nil {
			return fmt.Errorf("%s: Init: %w", src.file, err)
		}
		return nil
	case <-time.After(s.opts.InitTimeout):
		return fmt.Errorf("%s: Init did not return within %v", src.file, s.opts.InitTimeout)
	}
}

// instance is one interpreter of a script with its workers.
type instance struct {
	s       *Script
	ip      *interp.Interpreter
	fns     []pointFunc
	inline  bool          // calls run on the caller's goroutine (see callInline)
	jobs    chan *job     // calls for the workers, when not inline
	quit    chan struct{} // closed: workers exit, callers move on
	halt    chan struct{} // closed when the interpreter is stopped
	stopped atomic.Bool
	closing sync.Once
}

// close lets the workers exit after their current calls.
func (in *instance) close() { in.closing.Do(func() { close(in.quit) }) }

// stop stops the interpreter: running calls are cut short. It reports
// whether this call did it.
func (in *instance) stop() bool {
	if !in.stopped.CompareAndSwap(false, true) {
		return false
	}
	in.close()
	close(in.halt)
	if in.ip != nil {
		stopInterp(in.ip)
	}
	return true
}

func (in *instance) work() {
	for {
		select {
		case j := <-in.jobs:
			in.run(j)
		case <-in.quit:
			return
		}
	}
}

// run calls the job's function, recovering a panic, and hands the result
// back unless the caller gave up on it.
func (in *instance) run(j *job) {
	err := call(j)
	if err == nil && in.stopped.Load() {
		err = errStopped
	}
	if !j.state.CompareAndSwap(jobRunning, jobDone) {
		in.s.stuck.Add(-1)
		return
	}
	j.done <- err
}

func call(j *job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &hooks.PanicError{Value: unwrapPanic(r), Stack: debug.Stack()}
		}
	}()
	return j.fn(j.c)
}

// Job states: a worker moves running → done; a caller that gives up moves
// running → abandoned.
const (
	jobRunning uint32 = iota
	jobDone
	jobAbandoned
)

// job is one call, handed to a worker or run inline.
type job struct {
	c     *hooks.Context
	fn    pointFunc
	ctx   budgetCtx
	state atomic.Uint32
	done  chan error  // a worker's result
	in    *instance   // an inline call's interpreter
	watch *time.Timer // an inline call's budget (runs overrun)
}

// prepare readies j for a call of fn with c, whose Ctx becomes the
// call's budget context (derived from parent) until the caller restores it.
func (j *job) prepare(c *hooks.Context, fn pointFunc, parent context.Context, budget time.Duration) {
	j.c, j.fn = c, fn
	j.state.Store(jobRunning)
	j.ctx.reset(parent, time.Now().Add(budget))
	c.Ctx = &j.ctx
}

// callerCtx is the context the caller gave c, Background when none.
func callerCtx(c *hooks.Context) context.Context {
	if c.Ctx == nil {
		return context.Background()
	}
	return c.Ctx
}

// budgetCtx is the Context.Ctx of a script call: done when the budget runs
// out. Its channel is only made when a script asks for it, so a call that
// never looks costs nothing.
type budgetCtx struct {
	parent   context.Context
	deadline time.Time
	mu       sync.Mutex
	done     chan struct{}
	err      error
}

func (b *budgetCtx) reset(parent context.Context, deadline time.Time) {
	b.mu.Lock()
	b.parent, b.deadline, b.done, b.err = parent, deadline, nil, nil
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		b.deadline = d
	}
	b.mu.Unlock()
}

func (b *budgetCtx) Deadline() (time.Time, bool) { return b.deadline, true }

func (b *budgetCtx) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done == nil {
		b.done = make(chan struct{})
		if b.err != nil {
			close(b.done)
		}
	}
	return b.done
}

func (b *budgetCtx) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		if err := b.parent.Err(); err != nil {
			return err
		}
	}
	return b.err
}

func (b *budgetCtx) Value(key any) any { return b.parent.Value(key) }

func (b *budgetCtx) expire(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
		if b.done != nil {
			close(b.done)
		}
	}
}
