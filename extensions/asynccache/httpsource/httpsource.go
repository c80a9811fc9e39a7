// Package httpsource is an external source for the async cache that asks
// an HTTP service: GET on a URL template whose {field} placeholders are
// filled with client fields (escaped for the path or the query), a JSON
// object in answer whose members become env keys, 404 for an unknown
// client. The "http-cache" built-in puts it behind extensions/asynccache.
package httpsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hook6/hook6/extensions/asynccache"
	"github.com/hook6/hook6/hooks"
)

// Config configures a Source.
type Config struct {
	// URL is the template, e.g. "https://ipam.example/v1/clients/{duid}"
	// or "http://127.0.0.1:8080/lookup?duid={duid}&rid={remote-id}".
	// Placeholders may not be in the scheme or host.
	URL string
	// Attributes maps a top-level member of the JSON answer to an env key.
	// Empty: every scalar member is copied under its own name.
	Attributes map[string]string
	// Timeout bounds one request (default 2s).
	Timeout time.Duration
	// TokenFile, when set, holds a token sent as "Authorization: Bearer".
	// It is read on every request, so it can be rotated.
	TokenFile string
	// CAFile is a PEM bundle of CAs to trust for https.
	CAFile string
	// InsecureSkipVerify accepts any certificate. For lab use only.
	InsecureSkipVerify bool
	// MaxConns bounds the connections kept to the service (default 8).
	MaxConns int
}

// maxBody bounds the answer read.
const maxBody = 1 << 20

// Source asks the HTTP service. It is safe for concurrent use.
type Source struct {
	cfg    Config
	parts  []string // literal, name, literal, …; odd indexes are names
	inPath []bool   // per name: true when in the path, false in the query
	fields []string
	client *http.Client
}

// New checks cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	s := &Source{cfg: cfg}
	if err := s.parse(cfg.URL); err != nil {
		return nil, fmt.Errorf("http source: %w", err)
	}
	if cfg.TokenFile != "" {
		if _, err := s.token(); err != nil {
			return nil, fmt.Errorf("http source: %w", err)
		}
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // operator's explicit choice
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http source: reading ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http source: ca-file %s: no PEM certificate", cfg.CAFile)
		}
	}
	s.client = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			TLSClientConfig:     tc,
			MaxIdleConnsPerHost: cfg.MaxConns,
			MaxConnsPerHost:     cfg.MaxConns,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// parse splits the URL template and checks it.
func (s *Source) parse(tmpl string) error {
	if tmpl == "" {
		return errors.New("url is required")
	}
	rest, query := tmpl, false
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			s.parts = append(s.parts, rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("url %q: '{' without '}'", tmpl)
		}
		name := rest[i+1 : i+j]
		if name == "" || strings.ContainsAny(name, "{/?&=# ") {
			return fmt.Errorf("url %q: bad placeholder {%s}", tmpl, name)
		}
		query = query || strings.Contains(rest[:i], "?")
		s.parts = append(s.parts, rest[:i], name)
		s.inPath = append(s.inPath, !query)
		if !contains(s.fields, name) {
			s.fields = append(s.fields, name)
		}
		rest = rest[i+j+1:]
	}
	u, err := url.Parse(s.parts[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (len(s.parts) > 1 && u.Path == "" && u.RawQuery == "" && !strings.HasSuffix(s.parts[0], "?")) {
		return fmt.Errorf("url %q: want http(s)://host/… with placeholders only after the host", tmpl)
	}
	probe := make(map[string]string, len(s.fields))
	for _, f := range s.fields {
		probe[f] = "x"
	}
	if _, err := url.Parse(s.render(probe)); err != nil {
		return fmt.Errorf("url %q: %w", tmpl, err)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Fields lists the placeholders (asynccache.FieldLister).
func (s *Source) Fields() []string { return append([]string(nil), s.fields...) }

// render fills the template, escaping each value for where it stands.
func (s *Source) render(fields map[string]string) string {
	var b strings.Builder
	for i, p := range s.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		if v := fields[p]; s.inPath[i/2] {
			if v == "." || v == ".." { // a whole dot segment would walk the path
				v = strings.ReplaceAll(v, ".", "%2E")
			} else {
				v = url.PathEscape(v)
			}
			b.WriteString(v)
		} else {
			b.WriteString(url.QueryEscape(fields[p]))
		}
	}
	return b.String()
}

// URL returns the request URL for fields, false when a field is missing.
func (s *Source) URL(fields map[string]string) (string, bool) {
	for _, f := range s.fields {
		if fields[f] == "" {
			return "", false
		}
	}
	return s.render(fields), true
}

func (s *Source) token() (string, error) {
	b, err := os.ReadFile(s.cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("reading token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Lookup asks the service: 200 with a JSON object is found, 404 is not
// found, anything else an error. A missing field is not found.
func (s *Source) Lookup(ctx context.Context, fields map[string]string) (map[string]string, bool, error) {
	u, ok := s.URL(fields)
	if !ok {
		return nil, false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("http lookup %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	if s.cfg.TokenFile != "" {
		tok, err := s.token()
		if err != nil {
			return nil, false, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("http lookup: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, false, fmt.Errorf("http lookup %s: reading the answer: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("http lookup %s: %s", u, resp.Status)
	case len(body) > maxBody:
		return nil, false, fmt.Errorf("http lookup %s: answer larger than %d bytes", u, maxBody)
	}
	values, err := s.decode(body)
	if err != nil {
		return nil, false, fmt.Errorf("http lookup %s: %w", u, err)
	}
	return values, true, nil
}

// decode maps the JSON object's scalar members to env keys.
func (s *Source) decode(body []byte) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	out := make(map[string]string, len(obj))
	put := func(member, key string) {
		raw, ok := obj[member]
		if !ok {
			return
		}
		var str string
		if json.Unmarshal(raw, &str) == nil {
			out[key] = str
			return
		}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			switch v.(type) {
			case float64, bool:
				out[key] = string(raw)
			}
		}
	}
	if len(s.cfg.Attributes) == 0 {
		for m := range obj {
			put(m, m)
		}
	}
	for m, k := range s.cfg.Attributes {
		put(m, k)
	}
	return out, nil
}

// Close closes idle connections.
func (s *Source) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// NewCached builds the "http-cache" built-in: the service behind the
// async cache. init-args: url, attributes ("member=env.key, …"), timeout,
// token-file, tls-ca-file, tls-insecure-skip-verify, max-conns, plus the
// cache's (asynccache.ReadArgs).
func NewCached(name string, points []hooks.Point, args map[string]string) (*asynccache.Extension, error) {
	a := asynccache.NewArgs(args)
	cfg := Config{
		URL:                a.String("url", ""),
		Attributes:         a.Map("attributes"),
		Timeout:            a.Duration("timeout", 2*time.Second),
		TokenFile:          a.String("token-file", ""),
		CAFile:             a.String("tls-ca-file", ""),
		InsecureSkipVerify: a.Bool("tls-insecure-skip-verify", false),
		MaxConns:           a.Int("max-conns", 8),
	}
	cc, opt := asynccache.ReadArgs(points, a)
	if err := a.Err(); err != nil {
		return nil, fmt.Errorf("http-cache %s: %w", name, err)
	}
	src, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("http-cache %s: %w", name, err)
	}
	x, err := asynccache.Start(name, cc, opt, src)
	if err != nil {
		src.Close()
		return nil, err
	}
	return x, nil
}

// Builtin is NewCached as a registry factory (extensions.Factory): the
// "http-cache" built-in.
func Builtin(name string, points []hooks.Point, args map[string]string) (hooks.Extension, error) {
	x, err := NewCached(name, points, args)
	if err != nil {
		return nil, err
	}
	return x, nil
}
