package httpsource_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hook6/hook6/extensions/asynccache"
	"github.com/hook6/hook6/extensions/asynccache/httpsource"
	"github.com/hook6/hook6/hooks"
)

// ipam is a small HTTP+JSON service on loopback: GET /v1/clients/{duid}.
type ipam struct {
	mu      sync.Mutex
	clients map[string]map[string]any
	paths   []string // raw paths requested
	auth    []string
	status  int // when non-zero, every answer has this status
}

func (s *ipam) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	duid, ok := strings.CutPrefix(r.URL.Path, "/v1/clients/")
	if r.URL.Path == "/lookup" {
		duid, ok = r.URL.Query().Get("duid"), true
	}
	c, found := s.clients[duid]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(c)
}

func (s *ipam) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func start(t *testing.T) (*ipam, *httptest.Server) {
	t.Helper()
	svc := &ipam{clients: map[string]map[string]any{
		"0001": {"prefix": "2001:db8:8000:100::/56", "address": "2001:db8:1::100", "vlan": 42, "tags": []string{"a"}},
	}}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return svc, srv
}

func TestLookup(t *testing.T) {
	svc, srv := start(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	src, err := httpsource.New(httpsource.Config{
		URL:        srv.URL + "/v1/clients/{duid}",
		Attributes: map[string]string{"prefix": "ext.prefix", "vlan": "ext.vlan", "tags": "ext.tags"},
		TokenFile:  tok,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	v, found, err := src.Lookup(context.Background(), map[string]string{"duid": "0001"})
	if err != nil || !found || v["ext.prefix"] != "2001:db8:8000:100::/56" || v["ext.vlan"] != "42" {
		t.Fatalf("known client: %v %v %v", v, found, err)
	}
	if _, ok := v["ext.tags"]; ok {
		t.Errorf("a JSON array was mapped: %v", v)
	}
	if _, ok := v["address"]; ok {
		t.Errorf("an unmapped member was copied: %v", v)
	}
	if svc.auth[0] != "Bearer s3cret" {
		t.Errorf("Authorization %q", svc.auth[0])
	}
	if _, found, err := src.Lookup(context.Background(), map[string]string{"duid": "0002"}); found || err != nil {
		t.Fatalf("unknown client: %v %v", found, err)
	}
	if _, found, err := src.Lookup(context.Background(), map[string]string{}); found || err != nil || len(svc.requested()) != 2 {
		t.Fatalf("missing field: %v %v, requests %v", found, err, svc.requested())
	}
	svc.status = http.StatusInternalServerError
	if _, _, err := src.Lookup(context.Background(), map[string]string{"duid": "0001"}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("server error: %v", err)
	}
}

// TestEscaping: a field cannot leave its path segment or query value.
func TestEscaping(t *testing.T) {
	svc, srv := start(t)
	src, err := httpsource.New(httpsource.Config{URL: srv.URL + "/v1/clients/{duid}?rid={remote-id}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []string{"../../admin", "..", "0001?admin=1", "0001#x", "a/b", "x&rid=y"} {
		_, found, err := src.Lookup(context.Background(), map[string]string{"duid": attack, "remote-id": attack})
		if found || err != nil {
			t.Errorf("%q: found %v err %v", attack, found, err)
		}
	}
	for _, p := range svc.requested() {
		path, query, _ := strings.Cut(p, "?")
		seg, _ := strings.CutPrefix(path, "/v1/clients/")
		if strings.Contains(seg, "/") || !strings.HasPrefix(path, "/v1/clients/") || seg == ".." || strings.Count(query, "=") != 1 {
			t.Errorf("request %q escaped its template", p)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, u := range []string{"", "ftp://x/{duid}", "http://{duid}/", "http://host{duid}", "http://x/{duid", "http://x/{}"} {
		if _, err := httpsource.New(httpsource.Config{URL: u}); err == nil {
			t.Errorf("url %q accepted", u)
		}
	}
	if _, err := httpsource.New(httpsource.Config{URL: "http://x/{duid}", TokenFile: "/nonexistent"}); err == nil {
		t.Errorf("missing token file accepted")
	}
}

// TestCached: the http-cache built-in: pending, then served; service
// down: cached clients still served, the rest dropped.
func TestCached(t *testing.T) {
	_, srv := start(t)
	x, err := httpsource.NewCached("ipam", nil, map[string]string{
		"url": srv.URL + "/lookup?duid={duid}", "attributes": "prefix=ext.prefix", "ttl": "200ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	ch, err := hooks.NewChain([]hooks.Member{{Extension: x}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(duid string) *hooks.Env {
		env := hooks.NewEnv()
		env.SetServer(hooks.KeyClientDUID, duid)
		for _, p := range []hooks.Point{hooks.PostPacketDecode, hooks.PrePacketEncode} {
			if err := ch.Run(&hooks.Context{Point: p, Env: env}); err != nil {
				t.Fatal(err)
			}
		}
		return env
	}
	settle := func() {
		for deadline := time.Now().Add(5 * time.Second); x.Stats().InFlight != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("stuck: %+v", x.Stats())
			}
			time.Sleep(time.Millisecond)
		}
	}
	if env := run("0001"); !env.IsTrue(hooks.KeyDrop) {
		t.Fatalf("first packet not dropped: %v", env.Map())
	}
	settle()
	if env := run("0001"); env.IsTrue(hooks.KeyDrop) || env.Value("ext.prefix") != "2001:db8:8000:100::/56" {
		t.Fatalf("retransmission: %v", env.Map())
	}
	srv.Close()
	time.Sleep(250 * time.Millisecond) // the entry goes stale
	run("0001")                        // refresh fails
	settle()
	if env := run("0001"); env.IsTrue(hooks.KeyDrop) || env.Value("ext.prefix") == "" {
		t.Fatalf("stale entry with the service down: %v", env.Map())
	}
	run("0003")
	settle()
	if env := run("0003"); !env.IsTrue(hooks.KeyDrop) {
		t.Fatalf("uncached client served with the service down: %v", env.Map())
	}
	settle()
	if st := x.Stats(); st.Errors < 2 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	var _ asynccache.FieldLister = (*httpsource.Source)(nil)
}
