package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/failover"
)

// fakeFailover answers the failover routes and records what it was asked.
type fakeFailover struct {
	mu     sync.Mutex
	st     failover.Status
	bodies []map[string]any
	refuse error
}

func (f *fakeFailover) routes(s *control.Server) {
	s.Handle("GET /v1/failover/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		control.WriteJSON(w, http.StatusOK, f.st)
	}))
	record := func(r *http.Request) map[string]any {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.bodies = append(f.bodies, b)
		return b
	}
	s.Handle("POST /v1/failover/partnerdown", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := record(r)
		if f.refuse != nil {
			control.WriteError(w, http.StatusConflict, f.refuse)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.st.State = "partner-down"
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if s, ok := b["at"].(string); ok {
			at, _ = time.Parse(time.RFC3339, s)
		}
		f.st.PartnerDownTime = &at
		control.WriteJSON(w, http.StatusOK, f.st)
	}))
	s.Handle("POST /v1/failover/sync", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := record(r)
		control.WriteJSON(w, http.StatusOK, map[string]any{"exact": b["exact"], "bytes": 812,
			"sections": failover.SyncedSections})
	}))
}

func TestFailoverStatus(t *testing.T) {
	s, sock := startFake(t, newFake())
	since := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	f := &fakeFailover{st: failover.Status{Name: "pair-1", Role: "secondary", State: "normal", Since: since,
		TimeInState: 3600, PartnerState: "normal", PartnerSince: &since, Communications: "ok",
		Responsiveness: "renew-responsive", Peer: "[2001:db8:f::1]:647", Local: "[2001:db8:f::2]:647", TLS: true,
		MCLT: "1h0m0s", Pending: 3, Unacked: 1,
		History: []failover.Transition{{From: "recover-done", To: "normal", At: since}}}}
	f.routes(s)
	code, out, errs := runCLI(t, sock, "failover", "status")
	for _, want := range []string{"relationship:", "pair-1", "state:", "normal since 2026-03-01T11:00:00Z (1h)",
		"responsiveness:", "renew-responsive", "transport:", "tls", "pending updates:", "3",
		"recent transitions:", "recover-done  ->  normal"} {
		if !strings.Contains(out, want) {
			t.Errorf("failover status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || errs != "" {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	code, out, _ = runCLI(t, sock, "failover", "status", "-o", "json")
	var st failover.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.Pending != 3 || st.State != "normal" {
		t.Errorf("status -o json = %d %+v %v", code, st, err)
	}
}

func TestFailoverSetPartnerDown(t *testing.T) {
	s, sock := startFake(t, newFake())
	f := &fakeFailover{st: failover.Status{Name: "pair-1", State: "communications-interrupted"}}
	f.routes(s)
	code, out, errs := runCLI(t, sock, "failover", "setpartnerdown", "--at", "2026-03-01T10:30:00Z")
	if code != 0 || out != "pair-1: state partner-down, partner down since 2026-03-01T10:30:00Z\n" {
		t.Errorf("setpartnerdown = %d %q %q", code, out, errs)
	}
	if at := f.bodies[0]["at"]; at != "2026-03-01T10:30:00Z" {
		t.Errorf("sent at = %v", at)
	}
	if code, _, _ = runCLI(t, sock, "failover", "setpartnerdown"); code != 0 || f.bodies[1]["at"] != nil {
		t.Errorf("without --at: exit %d body %v", code, f.bodies[1])
	}
	code, _, errs = runCLI(t, sock, "failover", "setpartnerdown", "--at", "yesterday")
	if code != 2 || !strings.Contains(errs, "--at") {
		t.Errorf("bad --at: exit %d %q", code, errs)
	}
	f.refuse = errors.New("the partner is reachable (its state is normal): it is not down")
	code, _, errs = runCLI(t, sock, "failover", "setpartnerdown")
	if code != 1 || !strings.Contains(errs, "partner is reachable") {
		t.Errorf("refused: exit %d %q", code, errs)
	}
}

func TestFailoverSync(t *testing.T) {
	s, sock := startFake(t, newFake())
	f := &fakeFailover{}
	f.routes(s)
	code, out, errs := runCLI(t, sock, "failover", "sync", "--exact")
	if code != 0 || !strings.Contains(out, "pushed policies, links, prefixes, reservations, extensions (812 bytes, exact)") {
		t.Errorf("sync = %d %q %q", code, out, errs)
	}
	if f.bodies[0]["exact"] != true {
		t.Errorf("sent %v", f.bodies[0])
	}
	if code, _, errs = runCLI(t, sock, "failover", "sync", "now"); code != 2 {
		t.Errorf("sync with an argument: exit %d %q", code, errs)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if got, _ := parseWhen("30m", now); !got.Equal(now.Add(-30 * time.Minute)) {
		t.Errorf("30m = %v", got)
	}
	if got, _ := parseWhen("2026-03-01T09:00:00+01:00", now); !got.Equal(now.Add(-4 * time.Hour)) {
		t.Errorf("RFC 3339 = %v", got)
	}
	if _, err := parseWhen("-5m", now); err == nil {
		t.Error("a negative duration was accepted")
	}
}
