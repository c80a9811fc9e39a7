package plugin

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// recorder collects the records a point function logs through c.Log; they
// travel back in the answer and hook6 logs them with the packet's logger.
type recorder struct {
	mu      sync.Mutex
	records []*pb.LogRecord
}

// logHandler is the slog.Handler behind c.Log in a plugin.
type logHandler struct {
	min    slog.Level
	out    *recorder
	prefix string   // group prefix, "g1.g2."
	attrs  []string // from WithAttrs, key/value pairs
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := &pb.LogRecord{Level: int32(r.Level), Message: valid(r.Message), Attrs: slices.Clone(h.attrs)}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs = appendAttr(rec.Attrs, h.prefix, a)
		return true
	})
	h.out.mu.Lock()
	h.out.records = append(h.out.records, rec)
	h.out.mu.Unlock()
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func appendAttr(kv []string, prefix string, a slog.Attr) []string {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			kv = appendAttr(kv, prefix+a.Key+".", g)
		}
		return kv
	}
	return append(kv, valid(prefix+a.Key), valid(v.String()))
}

// valid makes s valid UTF-8, as protobuf strings must be.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// minLevel is the lowest level log accepts, so a plugin sends no record
// hook6 would drop.
func minLevel(ctx context.Context, log *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(ctx, l) {
			return l
		}
	}
	return slog.LevelError
}

// hclogFor gives go-plugin a logger writing into log: go-plugin's own
// messages and whatever the plugin process writes to stderr (a panic's
// stack trace is logged at error level).
func hclogFor(log *slog.Logger, name string) hclog.Logger {
	level := hclog.Info
	if log.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin." + name,
		Level:      level,
		Output:     &slogWriter{log: log},
		JSONFormat: true,
	})
}

// slogWriter turns hclog's JSON lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		w.log.Info(strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := m["@message"].(string)
	lvl, _ := m["@level"].(string)
	module, _ := m["@module"].(string)
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") && k != "timestamp" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := []any{slog.String("module", module)}
	for _, k := range keys {
		args = append(args, slog.Any(k, m[k]))
	}
	w.log.Log(context.Background(), hclogLevel(lvl), msg, args...)
	return len(p), nil
}

func hclogLevel(s string) slog.Level {
	switch s {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
