package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Client talks to a control socket. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client of the control socket at socketPath. Nothing
// is dialled until the first request.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression: true,
	}
	return &Client{socket: socketPath, hc: &http.Client{Transport: tr}}
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// Error is an error answer of the control API.
type Error struct {
	Status  int    // HTTP status code
	Message string // the server's message
}

func (e *Error) Error() string { return e.Message }

// StatusOf returns the HTTP status of an API error, or 0 if err is not one.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do sends one request. path is the route with its query (for example
// "/v1/failover/status"). A non-nil body is sent as JSON, or as raw bytes
// if it is an io.Reader. A 2xx answer is decoded into out unless out is
// nil; numbers decoded into interface values become json.Number. Any other
// answer is returned as *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// send sends one request and returns a 2xx answer for the caller to read
// and close; any other answer is returned as *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil, fmt.Errorf("cannot reach hook6d on control socket %s: %w", c.socket, oe.Err)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.socket, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "application/octet-stream"
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		rd, ctype = bytes.NewReader(js), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hook6"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func readError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		return &Error{Status: resp.StatusCode, Message: eb.Error}
	}
	msg := strings.TrimSpace(string(raw))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}

// Status returns the server's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Leases returns the leases matching f; with an error, those read before
// it. EachLease does not hold them all.
func (c *Client) Leases(ctx context.Context, f LeaseFilter) ([]Lease, error) {
	var ls []Lease
	err := c.EachLease(ctx, f, func(l *Lease) error {
		ls = append(ls, *l)
		return nil
	})
	return ls, err
}

// EachLease calls fn with each lease matching f as it is read from the
// server, without holding the list. fn must not keep l, which is reused.
// An error of fn stops the list and is returned as is. A list cut short,
// by the server or the connection, is an error, after fn has seen the
// leases before the cut.
func (c *Client) EachLease(ctx context.Context, f LeaseFilter, fn func(l *Lease) error) error {
	q := url.Values{}
	if f.Prefix.IsValid() {
		q.Set("prefix", f.Prefix.String())
	}
	if f.DUID != nil {
		q.Set("duid", FormatDUID(f.DUID))
	}
	path := "/v1/leases"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.eachLeaseAt(ctx, path, fn)
}

// eachLeaseAt is EachLease of the list at path.
func (c *Client) eachLeaseAt(ctx context.Context, path string, fn func(l *Lease) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lr := newLeaseReader(resp.Body) // a list cut short: io.ErrUnexpectedEOF
	var l Lease
	for {
		ok, err := lr.Next(&l)
		if err != nil {
			return fmt.Errorf("GET %s: reading answer: %w", path, err)
		}
		if !ok {
			return nil
		}
		if err := fn(&l); err != nil {
			return err
		}
	}
}

// Lease returns the lease of exactly p; a missing lease is an *Error with
// Status 404.
func (c *Client) Lease(ctx context.Context, p netip.Prefix) (Lease, error) {
	var l Lease
	err := c.Do(ctx, http.MethodGet, "/v1/leases/"+url.PathEscape(p.String()), nil, &l)
	return l, err
}

// DeleteLeases removes every lease inside within (::/0 for all) and
// returns how many were removed.
func (c *Client) DeleteLeases(ctx context.Context, within netip.Prefix) (int, error) {
	var d Deleted
	err := c.Do(ctx, http.MethodDelete, "/v1/leases?within="+url.QueryEscape(within.String()), nil, &d)
	return d.Deleted, err
}

// Reload asks the server to re-read its configuration. A refused
// configuration is an *Error with Status 422 whose Message holds the
// config errors, one per line.
func (c *Client) Reload(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

// Stats returns the server's counters.
func (c *Client) Stats(ctx context.Context) (map[string]any, error) {
	var st map[string]any
	err := c.Do(ctx, http.MethodGet, "/v1/stats", nil, &st)
	return st, err
}
