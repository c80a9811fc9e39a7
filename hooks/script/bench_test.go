package script

import (
	"testing"
	"time"

	"github.com/hook6/hook6/hooks"
)

const benchSrc = header + `import "strings"

func PrePacketEncode(c *hooks.Context) error {
	if strings.HasPrefix(c.Env.Value("class"), "gold") {
		c.Response.SetPreference(255)
	}
	return nil
}
`

// benchSrcOnWorkers is benchSrc importing sync: its calls are handed to
// the script's workers.
const benchSrcOnWorkers = header + `import (
	"strings"
	"sync"
)

var once sync.Once

func PrePacketEncode(c *hooks.Context) error {
	if strings.HasPrefix(c.Env.Value("class"), "gold") {
		c.Response.SetPreference(255)
	}
	return nil
}
`

func benchScript(b *testing.B) *Script { return benchScriptOf(b, benchSrc) }

func benchScriptOf(b *testing.B, src string) *Script {
	s, err := Load(Options{Path: "bench.go", Source: []byte(src)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkDirectCall is the interpreter alone: the point function called
// in the benchmark's goroutine, with no budget.
func BenchmarkDirectCall(b *testing.B) {
	s := benchScript(b)
	fn := s.cur.Load().fns[hooks.PrePacketEncode]
	c := ctx(hooks.PrePacketEncode)
	c.Env.Set("class", "gold")
	b.ReportAllocs()
	for b.Loop() {
		if err := fn(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleWithin adds the budget timer (the call runs inline).
func BenchmarkHandleWithin(b *testing.B) { benchHandleWithin(b, benchScript(b)) }

// BenchmarkHandleWithinWorkers adds the hand-off to a worker.
func BenchmarkHandleWithinWorkers(b *testing.B) {
	benchHandleWithin(b, benchScriptOf(b, benchSrcOnWorkers))
}

func benchHandleWithin(b *testing.B, s *Script) {
	c := ctx(hooks.PrePacketEncode)
	c.Env.Set("class", "gold")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.HandleWithin(c, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandleWithinParallel(b *testing.B) {
	s := benchScript(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := ctx(hooks.PrePacketEncode)
		c.Env.Set("class", "gold")
		for pb.Next() {
			if err := s.HandleWithin(c, time.Second); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkDirectCallParallel(b *testing.B) {
	s := benchScript(b)
	fn := s.cur.Load().fns[hooks.PrePacketEncode]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := ctx(hooks.PrePacketEncode)
		c.Env.Set("class", "gold")
		for pb.Next() {
			if err := fn(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
