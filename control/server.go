package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Server serves the control API over a Backend.
type Server struct {
	b   Backend
	log *slog.Logger
	mux *http.ServeMux
}

// NewServer returns a server with the standard routes over b. A nil log
// discards.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/leases", s.leases)
	s.mux.HandleFunc("GET /v1/leases/{prefix...}", s.lease)
	s.mux.HandleFunc("DELETE /v1/leases", s.deleteLeases)
	s.mux.HandleFunc("POST /v1/reload", s.reload)
	s.mux.HandleFunc("GET /v1/stats", s.stats)
	return s
}

// Handle adds a route, in net/http ServeMux pattern syntax (for example
// "GET /v1/failover/status"). Handlers should answer JSON and report
// errors with WriteError. Handle may be called while serving; it panics
// if the pattern conflicts with an existing one.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves one request. Requests that match no route get a JSON
// 404 or 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.mux.Handler(r); pattern == "" {
		// Let the mux decide between 404 and 405 (and the Allow header),
		// then answer in JSON.
		cw := &codeWriter{header: w.Header()}
		h.ServeHTTP(cw, r)
		w.Header().Del("Content-Type")
		w.Header().Del("X-Content-Type-Options")
		msg := http.StatusText(cw.code)
		if cw.code == http.StatusNotFound {
			msg = "no such route: " + r.Method + " " + r.URL.Path
		}
		WriteError(w, cw.code, errors.New(msg))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// codeWriter records the status of a response it discards.
type codeWriter struct {
	header http.Header
	code   int
}

func (c *codeWriter) Header() http.Header         { return c.header }
func (c *codeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (c *codeWriter) WriteHeader(code int)        { c.code = code }

// WriteJSON answers v as JSON with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to tell it
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError answers err as {"error": "..."} with status code.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, ErrorBody{Error: err.Error()})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.b.Status())
}

func (s *Server) leases(w http.ResponseWriter, r *http.Request) {
	var f LeaseFilter
	q := r.URL.Query()
	if v := q.Get("prefix"); v != "" {
		p, err := ParsePrefix(v)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		f.Prefix = p
	}
	if v := q.Get("duid"); v != "" {
		d, err := ParseDUID(v)
		if err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		f.DUID = d
	}
	ls, err := s.b.Leases(f)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing leases: %w", err))
		return
	}
	// Encode lease by lease into a buffer rather than marshalling the
	// whole list: a million leases are hundreds of megabytes of JSON.
	w.Header().Set("Content-Type", "application/json")
	lw := NewLeaseWriter(w)
	for i := range ls {
		if err := lw.Write(&ls[i]); err != nil {
			s.abort(w, r, lw, fmt.Errorf("listing leases: %w", err))
			return
		}
	}
	if err := lw.Close(); err != nil {
		s.abort(w, r, lw, fmt.Errorf("listing leases: %w", err))
	}
}

// abort ends a lease list that failed. Before the first byte of the list
// went out the failure is answered as such; after, the connection is cut so
// that the client sees a truncated body rather than a well-formed list
// missing leases. A failure other than the client going away is logged.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, lw *LeaseWriter, err error) {
	if lw.err != nil {
		panic(http.ErrAbortHandler)
	}
	if !lw.wrote {
		s.fail(w, r, err)
		return
	}
	s.log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}

func (s *Server) lease(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("prefix")
	if v == "" {
		WriteError(w, http.StatusBadRequest, errors.New("missing address or prefix after /v1/leases/"))
		return
	}
	p, err := ParsePrefix(v)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return
	}
	l, ok := s.b.Lease(p)
	if !ok {
		WriteError(w, http.StatusNotFound, fmt.Errorf("no lease of %s", p))
		return
	}
	WriteJSON(w, http.StatusOK, l)
}

// Deleted is the answer to DELETE /v1/leases.
type Deleted struct {
	Deleted int `json:"deleted"`
}

func (s *Server) deleteLeases(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("within")
	if v == "" {
		WriteError(w, http.StatusBadRequest, errors.New("missing within=PREFIX (::/0 deletes every lease)"))
		return
	}
	p, err := ParsePrefix(v)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err)
		return
	}
	n, err := s.b.DeleteLeases(r.Context(), p)
	if err != nil {
		s.fail(w, r, fmt.Errorf("deleting leases within %s: %w", p, err))
		return
	}
	s.log.Info("leases deleted", "within", p, "count", n)
	WriteJSON(w, http.StatusOK, Deleted{Deleted: n})
}

// Reloaded is the answer to POST /v1/reload when the new configuration
// was taken.
type Reloaded struct {
	Reloaded bool `json:"reloaded"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Reload(); err != nil {
		s.log.Warn("reload refused", "err", err)
		WriteError(w, http.StatusUnprocessableEntity, err)
		return
	}
	s.log.Info("configuration reloaded")
	WriteJSON(w, http.StatusOK, Reloaded{Reloaded: true})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st := s.b.Stats()
	if st == nil {
		st = map[string]any{}
	}
	WriteJSON(w, http.StatusOK, st)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	WriteError(w, http.StatusInternalServerError, err)
}

// Serve listens on the unix socket socketPath (mode 0600; its directory
// is created 0700 if missing) and serves until ctx is done, then removes
// the socket. A stale socket left by a dead server is replaced; a live one
// is an error.
func (s *Server) Serve(ctx context.Context, socketPath string) error {
	l, err := listen(socketPath)
	if err != nil {
		return err
	}
	defer os.Remove(socketPath)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	s.log.Info("control socket listening", "path", socketPath)
	select {
	case err := <-done:
		return fmt.Errorf("serving control socket %s: %w", socketPath, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-done
	return nil
}

// listen binds socketPath with mode 0600 from the first moment: it binds in
// a private 0700 directory, sets the mode, then renames the socket into
// place.
func listen(socketPath string) (*net.UnixListener, error) {
	dir := filepath.Dir(socketPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating control socket directory: %w", err)
	}
	if err := clearStale(socketPath); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("creating control socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on control socket: %w", err)
	}
	l.SetUnlinkOnClose(false) // Serve removes socketPath itself
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("setting control socket mode: %w", err)
	}
	if err := os.Rename(tmpSock, socketPath); err != nil {
		l.Close()
		return nil, fmt.Errorf("placing control socket at %s: %w", socketPath, err)
	}
	return l, nil
}

// clearStale removes a socket at path that no server answers on. A live
// socket or a file that is not a socket is left alone and reported.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another server is listening on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale control socket %s: %w", path, err)
	}
	return nil
}
