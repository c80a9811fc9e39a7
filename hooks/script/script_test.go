package script

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/hooks"
)

const header = "package main\n\nimport \"github.com/hook6/hook6/hooks\"\n\n"

// load loads src (a script body after the hooks import) as file name.
func load(t *testing.T, name, src string, opts Options) *Script {
	t.Helper()
	opts.Path, opts.Source = name, []byte(src)
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	s, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(p hooks.Point) *hooks.Context {
	return &hooks.Context{Point: p, Env: hooks.NewEnv(), Response: &hooks.Response{}}
}

func TestLoadRunsPointsAndInit(t *testing.T) {
	s := load(t, "pref.go", header+`import "strings"

var pref uint8 = 1

func Init(args map[string]string) error {
	if args["gold"] == "yes" {
		pref = 255
	}
	return nil
}

func PrePacketEncode(c *hooks.Context) error {
	if strings.HasPrefix(c.Env.Value("class"), "gold") {
		c.Response.SetPreference(pref)
	}
	return c.Env.Set("seen", "pre-packet-encode")
}

func PostPacketDecode(c *hooks.Context) error { return nil }
func GenerateLease(c *hooks.Context) error    { return nil }
`, Options{Args: map[string]string{"gold": "yes"}, Points: []hooks.Point{hooks.PrePacketEncode, hooks.PostPacketDecode}})
	if got := fmt.Sprint(s.Points()); got != "[post-packet-decode pre-packet-encode]" {
		t.Errorf("points %s", got)
	}
	if s.Name() != "pref" {
		t.Errorf("name %q", s.Name())
	}
	c := ctx(hooks.PrePacketEncode)
	c.Env.Set("class", "gold-plus")
	if err := s.HandleWithin(c, time.Second); err != nil {
		t.Fatal(err)
	}
	if !c.Response.PreferenceSet || c.Response.Preference != 255 || c.Env.Value("seen") != "pre-packet-encode" {
		t.Errorf("response %+v env %v", c.Response, c.Env.Map())
	}
	if c.Ctx == nil {
		t.Error("the Context's Ctx was not restored")
	}
}

func TestCompileErrorsGiveFileLine(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"undefined.go", header + "func PostPacketDecode(c *hooks.Context) error {\n\treturn nope\n}\n", "undefined.go:6:"},
		{"syntax.go", header + "func PostPacketDecode(c *hooks.Context) error {\n\treturn nil\n\n", "syntax.go:7:"},
		{"exec.go", "package main\n\nimport (\n\t\"os/exec\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\nfunc PostPacketDecode(c *hooks.Context) error { exec.Command(\"x\"); return nil }\n", "exec.go:4:2: import \"os/exec\" is not allowed"},
		{"unsafe.go", "package main\n\nimport \"unsafe\"\n", "unsafe.go:3:8: import \"unsafe\""},
		{"os.go", "package main\n\nimport \"os\"\n", "allow.files"},
		{"syscall.go", "package main\n\nimport \"syscall\"\n", "not allowed"},
		{"plugin.go", "package main\n\nimport \"plugin\"\n", "not allowed"},
		{"reflect.go", "package main\n\nimport \"reflect\"\n", "not allowed"},
		{"net.go", "package main\n\nimport \"net\"\n", "allow.network"},
		{"go.go", header + "func PostPacketDecode(c *hooks.Context) error {\n\tgo func() {}()\n\treturn nil\n}\n", "go.go:6:2: go statements are not allowed"},
		{"main.go", header + "func main() {}\n", "main.go:5:1: a script defines no main"},
		{"sig.go", header + "func GenerateLease(c *hooks.Context) {}\n", "sig.go:5:1: GenerateLease must be func GenerateLease(c *hooks.Context) error"},
		{"init.go", header + "func Init() error { return nil }\nfunc GenerateLease(c *hooks.Context) error { return nil }\n", "init.go:5:1: Init must be"},
		{"rangeint.go", header + "func GenerateLease(c *hooks.Context) error {\n\tfor i := range 10 {\n\t\t_ = i\n\t}\n\treturn nil\n}\n", "rangeint.go:6:17: range over an integer"},
		{"min.go", header + "func GenerateLease(c *hooks.Context) error {\n\t_ = min(1, 2)\n\treturn nil\n}\n", "min.go:6:6: builtin min"},
		{"types.go", header + "func GenerateLease(c *hooks.Context) error {\n\tvar x int = \"s\"\n\t_ = x\n\treturn nil\n}\n", "types.go:6:"},
		{"nopoints.go", header + "func helper() {}\n", "defines no point function"},
	}
	for _, tc := range cases {
		_, err := Load(Options{Path: tc.name, Source: []byte(tc.src)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
			continue
		}
		var ce CompileErrors
		if !errors.As(err, &ce) || len(ce) == 0 || ce[0].File == "" {
			t.Errorf("%s: not CompileErrors: %#v", tc.name, err)
		}
	}
}

func TestConfiguredPointMustBeDefined(t *testing.T) {
	_, err := Load(Options{Path: "x.go", Source: []byte(header + "func GenerateLease(c *hooks.Context) error { return nil }\n"),
		Points: []hooks.Point{hooks.GenerateLease, hooks.PrePacketEncode}})
	if err == nil || !strings.Contains(err.Error(), "pre-packet-encode (func PrePacketEncode)") {
		t.Fatalf("got %v", err)
	}
}

func TestPanicAndErrorAreReturned(t *testing.T) {
	s := load(t, "p.go", header+`import "errors"

func PostPacketDecode(c *hooks.Context) error {
	if c.Env.Value("mode") == "panic" {
		panic("boom")
	}
	if c.Env.Value("mode") == "error" {
		return errors.New("refused")
	}
	var m map[string]int
	if c.Env.Value("mode") == "nil-map" {
		m["x"] = 1
	}
	return nil
}
`, Options{})
	c := ctx(hooks.PostPacketDecode)
	c.Env.Set("mode", "panic")
	var pe *hooks.PanicError
	if err := s.HandleWithin(c, time.Second); !errors.As(err, &pe) || fmt.Sprint(pe.Value) != "boom" {
		t.Errorf("panic: got %v", err)
	}
	c.Env.Set("mode", "nil-map")
	if err := s.HandleWithin(c, time.Second); !errors.As(err, &pe) {
		t.Errorf("runtime panic: got %v", err)
	}
	c.Env.Set("mode", "error")
	if err := s.HandleWithin(c, time.Second); err == nil || err.Error() != "refused" {
		t.Errorf("error: got %v", err)
	}
	c.Env.Set("mode", "fine")
	if err := s.HandleWithin(c, time.Second); err != nil {
		t.Errorf("after a panic the script fails: %v", err)
	}
}

const runaway = header + `import "time"
` + runawayBody

// runawayOnWorkers is runaway importing sync, which can block in compiled
// code: its calls run on the script's workers.
const runawayOnWorkers = header + `import (
	"sync"
	"time"
)

var once sync.Once
` + runawayBody

// runaways are the runaway script in both ways of calling a script.
var runaways = map[string]string{"inline": runaway, "workers": runawayOnWorkers}

const runawayBody = `

func PostPacketDecode(c *hooks.Context) error {
	switch c.Env.Value("mode") {
	case "loop":
		n := 0
		for {
			n++
		}
	case "sleep":
		time.Sleep(time.Hour)
	case "wait":
		<-c.Ctx.Done()
		return c.Ctx.Err()
	}
	return c.Env.Set("answered", "yes")
}
`

// waitStandby waits until s has a standby interpreter.
func waitStandby(t *testing.T, s *Script) {
	t.Helper()
	for start := time.Now(); s.spare.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("no standby interpreter was built")
		}
	}
}

// waitAnswer calls the script until a call answers normally.
func waitAnswer(t *testing.T, s *Script) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		c := ctx(hooks.PostPacketDecode)
		if err := s.HandleWithin(c, time.Second); err == nil && c.Env.Value("answered") == "yes" {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the script never answered again")
	return 0
}

func TestRunawayCallsAreStopped(t *testing.T) {
	for way, src := range runaways {
		for _, mode := range []string{"loop", "sleep", "wait"} {
			t.Run(way+"/"+mode, func(t *testing.T) { testRunawayCallIsStopped(t, src, mode) })
		}
	}
}

func testRunawayCallIsStopped(t *testing.T, src, mode string) {
	s := load(t, "runaway.go", src, Options{})
	waitAnswer(t, s)
	waitStandby(t, s) // built in the background
	c := ctx(hooks.PostPacketDecode)
	c.Env.Set("mode", mode)
	start := time.Now()
	err := s.HandleWithin(c, 30*time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, hooks.ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	if took > 30*time.Millisecond+grace+500*time.Millisecond {
		t.Errorf("the timed-out call returned after %v", took)
	}
	if s.Restarts() != 1 || s.stuck.Load() != 0 {
		t.Errorf("restarts %d, stuck workers %d", s.Restarts(), s.stuck.Load())
	}
	waitAnswer(t, s)
}

// TestRunawayDoesNotStopOtherClients is the isolation promise: while one
// client's call loops, other clients' calls keep being answered.
func TestRunawayDoesNotStopOtherClients(t *testing.T) {
	for way, src := range runaways {
		t.Run(way, func(t *testing.T) { testRunawayDoesNotStopOtherClients(t, src) })
	}
}

func testRunawayDoesNotStopOtherClients(t *testing.T, src string) {
	s := load(t, "runaway.go", src, Options{Workers: 4})
	waitAnswer(t, s)
	var answered, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := ctx(hooks.PostPacketDecode)
				if err := s.HandleWithin(c, time.Second); err == nil && c.Env.Value("answered") == "yes" {
					answered.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for range 3 {
		// Each runaway call finds a standby ready (building one takes
		// longer than the looping call's budget on a busy machine).
		waitStandby(t, s)
		c := ctx(hooks.PostPacketDecode)
		c.Env.Set("mode", "loop")
		if err := s.HandleWithin(c, 20*time.Millisecond); !errors.Is(err, hooks.ErrTimeout) {
			t.Errorf("looping call: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Only calls running when an interpreter was stopped may fail: at most
	// one per caller per stop.
	if answered.Load() < 100 || failed.Load() > 6 {
		t.Errorf("other clients: %d answered, %d failed", answered.Load(), failed.Load())
	}
	t.Logf("other clients: %d answered, %d cut short or unavailable", answered.Load(), failed.Load())
	if s.Restarts() != 3 {
		t.Errorf("restarts %d", s.Restarts())
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := load(t, "c.go", header+`import "strconv"

func GenerateLease(c *hooks.Context) error {
	n, _ := strconv.Atoi(c.Env.Value("n"))
	return c.SetLeaseString("2001:db8::" + strconv.FormatInt(int64(n), 16))
}
`, Options{Workers: 3})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := g*1000 + i
				c := ctx(hooks.GenerateLease)
				c.Env.AtPoint(hooks.GenerateLease)
				c.Env.Set("n", fmt.Sprint(n))
				c.Allocation = &hooks.Allocation{From: mustPrefix("2001:db8::/64"), Length: 128}
				if err := s.HandleWithin(c, time.Second); err != nil {
					t.Error(err)
					return
				}
				if want := mustPrefix(fmt.Sprintf("2001:db8::%x/128", n)); c.Allocation.Candidate != want {
					t.Errorf("got %v, want %s", c.Allocation.Candidate, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestReloadSwapsOrKeepsTheOldScript(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.go")
	write := func(v string) {
		src := header + "func PostPacketDecode(c *hooks.Context) error { return c.Env.Set(\"v\", " + v + ") }\n"
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`"one"`)
	s, err := Load(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := func() string {
		c := ctx(hooks.PostPacketDecode)
		if err := s.HandleWithin(c, time.Second); err != nil {
			t.Fatal(err)
		}
		return c.Env.Value("v")
	}
	if value() != "one" {
		t.Fatal("first version not running")
	}
	write(`"two"`)
	if err := s.Reload(); err != nil || value() != "two" {
		t.Fatalf("reload: %v, value %s", err, value())
	}
	write(`two + 1`)
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), path+":5:") {
		t.Fatalf("a broken reload gave %v", err)
	}
	if value() != "two" {
		t.Error("the old script stopped after a broken reload")
	}
	// Once the standby is rebuilt from the new source, a runaway stop
	// does not bring back the old version.
	time.Sleep(100 * time.Millisecond)
	s.abort(s.cur.Load(), "test")
	if v := valueEventually(t, s); v != "two" {
		t.Errorf("after a restart the script says %q", v)
	}
}

func valueEventually(t *testing.T, s *Script) string {
	for range 1000 {
		c := ctx(hooks.PostPacketDecode)
		if err := s.HandleWithin(c, time.Second); err == nil {
			return c.Env.Value("v")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no answer")
	return ""
}

func TestCloseEndsCalls(t *testing.T) {
	s := load(t, "x.go", header+"func PostPacketDecode(c *hooks.Context) error { return nil }\n", Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.HandleWithin(ctx(hooks.PostPacketDecode), time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestCheckListsPoints(t *testing.T) {
	ps, err := Check("c.go", []byte(header+"func PrePacketEncode(c *hooks.Context) error { return nil }\nfunc PostPacketDecode(c *hooks.Context) error { return nil }\n"), Allow{})
	if err != nil || fmt.Sprint(ps) != "[post-packet-decode pre-packet-encode]" {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := Check("c.go", []byte(header+"func PrePacketEncode(c *hooks.Context) error { return x }\n"), Allow{}); err == nil {
		t.Fatal("Check accepted a broken script")
	}
}

func TestFilesOnlyWhereAllowed(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "table.txt")
	os.WriteFile(inside, []byte("2001:db8::7"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)
	src := "package main\n\nimport (\n\t\"os\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\n" + `func PostPacketDecode(c *hooks.Context) error {
	b, err := os.ReadFile(c.Env.Value("path"))
	if err != nil {
		return err
	}
	return c.Env.Set("content", string(b))
}
`
	s := load(t, "files.go", src, Options{Allow: Allow{Files: []string{dir}}})
	c := ctx(hooks.PostPacketDecode)
	c.Env.Set("path", inside)
	if err := s.HandleWithin(c, time.Second); err != nil || c.Env.Value("content") != "2001:db8::7" {
		t.Errorf("allowed file: %v %q", err, c.Env.Value("content"))
	}
	for _, p := range []string{outside, filepath.Join(dir, "..", filepath.Base(filepath.Dir(outside)), "secret.txt"), "/etc/passwd"} {
		c := ctx(hooks.PostPacketDecode)
		c.Env.Set("path", p)
		if err := s.HandleWithin(c, time.Second); !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s: got %v", p, err)
		}
	}
	writer := "package main\n\nimport (\n\t\"os\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\nfunc PostPacketDecode(c *hooks.Context) error {\n\t_, err := os.OpenFile(c.Env.Value(\"path\"), os.O_WRONLY|os.O_CREATE, 0o644)\n\treturn err\n}\n"
	w := load(t, "writer.go", writer, Options{Allow: Allow{Files: []string{dir}}})
	c = ctx(hooks.PostPacketDecode)
	c.Env.Set("path", filepath.Join(dir, "new.txt"))
	if err := w.HandleWithin(c, time.Second); !errors.Is(err, os.ErrPermission) {
		t.Errorf("writing under an allowed path: %v", err)
	}
	if _, err := Load(Options{Path: "wf.go", Source: []byte(strings.Replace(writer, "_, err := os.OpenFile(c.Env.Value(\"path\"), os.O_WRONLY|os.O_CREATE, 0o644)", "err := os.WriteFile(\"x\", nil, 0o644)", 1)),
		Allow: Allow{Files: []string{dir}}}); err == nil || !strings.Contains(err.Error(), "WriteFile") {
		t.Errorf("os.WriteFile is reachable: %v", err)
	}
	os.Symlink(outside, filepath.Join(dir, "link"))
	c = ctx(hooks.PostPacketDecode)
	c.Env.Set("path", filepath.Join(dir, "link"))
	if err := s.HandleWithin(c, time.Second); !errors.Is(err, os.ErrPermission) {
		t.Errorf("symlink out of the allowed directory: %v", err)
	}
	if _, err := Load(Options{Path: "x.go", Source: []byte("package main\n\nimport (\n\t\"os\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\nfunc PostPacketDecode(c *hooks.Context) error {\n\tos.Exit(1)\n\treturn nil\n}\n"), Allow: Allow{Files: []string{dir}}}); err == nil ||
		!strings.Contains(err.Error(), "Exit") {
		t.Errorf("os.Exit is reachable: %v", err)
	}
}

func TestHostGlobalsAreCopies(t *testing.T) {
	s := load(t, "g.go", "package main\n\nimport (\n\t\"io\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\n"+`func PostPacketDecode(c *hooks.Context) error {
	io.EOF = nil
	return nil
}
`, Options{})
	if err := s.HandleWithin(ctx(hooks.PostPacketDecode), time.Second); err != nil {
		t.Fatal(err)
	}
	if io.EOF == nil {
		t.Fatal("a script changed the server's io.EOF")
	}
}

func TestGoroutineSymbolsNeedAllow(t *testing.T) {
	src := "package main\n\nimport (\n\t\"time\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\n" + `func PostPacketDecode(c *hooks.Context) error {
	time.AfterFunc(time.Hour, func() {})
	return nil
}
`
	if _, err := Load(Options{Path: "af.go", Source: []byte(src)}); err == nil || !strings.Contains(err.Error(), "af.go:9:") {
		t.Errorf("time.AfterFunc without allow.goroutines: %v", err)
	}
	goSrc := header + "func PostPacketDecode(c *hooks.Context) error {\n\tdone := make(chan bool)\n\tgo func() { done <- true }()\n\t<-done\n\treturn nil\n}\n"
	s := load(t, "go.go", goSrc, Options{Allow: Allow{Goroutines: true}})
	if err := s.HandleWithin(ctx(hooks.PostPacketDecode), time.Second); err != nil {
		t.Error(err)
	}
	s = load(t, "af.go", src, Options{Allow: Allow{Goroutines: true}})
	if err := s.HandleWithin(ctx(hooks.PostPacketDecode), time.Second); err != nil {
		t.Error(err)
	}
}

func TestScriptOutputIsLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(b)
	}), nil))
	s := load(t, "print.go", "package main\n\nimport (\n\t\"fmt\"\n\t\"github.com/hook6/hook6/hooks\"\n)\n\n"+
		"func PostPacketDecode(c *hooks.Context) error {\n\tfmt.Println(\"hello from the script\")\n\tc.Log.Info(\"via c.Log\")\n\treturn nil\n}\n",
		Options{Log: log})
	c := ctx(hooks.PostPacketDecode)
	c.Log = log
	if err := s.HandleWithin(c, time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "hello from the script") || !strings.Contains(buf.String(), "via c.Log") {
		t.Errorf("log: %s", buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestCallsInlineUnlessTheScriptCanBlock: a script whose imports cannot
// block in compiled code runs on the caller's goroutine; one that can
// (sync, os, net…) on its workers.
func TestCallsInlineUnlessTheScriptCanBlock(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		imports string
		allow   Allow
		inline  bool
	}{
		{`"strings"; "time"; "context"`, Allow{}, true},
		{`"sync"`, Allow{}, false},
		{`"sync/atomic"`, Allow{}, true},
		{`"os"`, Allow{Files: []string{dir}}, false},
		{`"net"`, Allow{Network: true}, false},
	} {
		src := "package main\n\nimport (\n\t\"github.com/hook6/hook6/hooks\"\n"
		for _, im := range strings.Split(tc.imports, ";") {
			src += "\t_ " + strings.TrimSpace(im) + "\n"
		}
		src += ")\n\nfunc PostPacketDecode(c *hooks.Context) error { return c.Env.Set(\"answered\", \"yes\") }\n"
		s := load(t, "imports.go", src, Options{Allow: tc.allow})
		if got := s.cur.Load().inline; got != tc.inline {
			t.Errorf("imports %s: inline %v, want %v", tc.imports, got, tc.inline)
		}
		c := ctx(hooks.PostPacketDecode)
		if err := s.HandleWithin(c, time.Second); err != nil || c.Env.Value("answered") != "yes" {
			t.Errorf("imports %s: call: %v, answered %q", tc.imports, err, c.Env.Value("answered"))
		}
	}
}

// TestCallBlockedInCompiledCodeTiesUpOnlyAWorker: a call stuck where
// stopping the interpreter cannot reach (a wait group that is never done)
// returns to its caller within the budget and a grace period; the worker
// is given up and the script answers again.
func TestCallBlockedInCompiledCodeTiesUpOnlyAWorker(t *testing.T) {
	s := load(t, "stuck.go", header+`import "sync"

func PostPacketDecode(c *hooks.Context) error {
	if c.Env.Value("mode") == "stuck" {
		var wg sync.WaitGroup
		wg.Add(1)
		wg.Wait()
	}
	return c.Env.Set("answered", "yes")
}
`, Options{})
	waitAnswer(t, s)
	c := ctx(hooks.PostPacketDecode)
	c.Env.Set("mode", "stuck")
	start := time.Now()
	err := s.HandleWithin(c, 30*time.Millisecond)
	if took := time.Since(start); took > 30*time.Millisecond+grace+500*time.Millisecond {
		t.Errorf("the stuck call returned after %v", took)
	}
	if !errors.Is(err, hooks.ErrTimeout) {
		t.Fatalf("got %v", err)
	}
	if s.stuck.Load() != 1 || s.Restarts() != 1 {
		t.Errorf("stuck workers %d, restarts %d; want 1 and 1", s.stuck.Load(), s.Restarts())
	}
	waitAnswer(t, s)
}
