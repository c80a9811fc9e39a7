package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Binaries built once for every test and benchmark of the package.
var (
	exampleBin string // examples/plugins/remoteid-prefix
	faultBin   string // internal/faultplugin
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hook6-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exampleBin = filepath.Join(dir, "remoteid-prefix")
	faultBin = filepath.Join(dir, "faultplugin")
	for bin, pkg := range map[string]string{
		exampleBin: "github.com/hook6/hook6/examples/plugins/remoteid-prefix",
		faultBin:   "github.com/hook6/hook6/hooks/plugin/internal/faultplugin",
	} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// logRecorder keeps log records, with the attributes of With, for
// assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(ctx context.Context, rec slog.Record) error {
	return r.withAttrs(nil).Handle(ctx, rec)
}
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler { return r.withAttrs(as) }
func (r *logRecorder) WithGroup(string) slog.Handler         { return r }

func (r *logRecorder) withAttrs(as []slog.Attr) *recordingHandler {
	return &recordingHandler{r: r, attrs: as}
}

type recordingHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(h.attrs...)
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.recs = append(h.r.recs, rec)
	return nil
}
func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{r: h.r, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

// find returns the first record whose message is msg, with its attributes.
func (r *logRecorder) find(msg string) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Message == msg {
			attrs := map[string]string{}
			rec.Attrs(func(a slog.Attr) bool {
				attrs[a.Key] = a.Value.String()
				return true
			})
			return attrs, true
		}
	}
	return nil, false
}
