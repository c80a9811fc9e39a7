//go:build ignore

// async-ldap.go is the async LDAP cache of the ldap-cache built-in written
// as a script, to show that scripts can do it too: the directory is never
// queried while a packet waits. A client found fresh in the cache gets its
// entry's attributes in the environment dictionary at once; otherwise one
// background query per client is started (at most `workers` at a time)
// and the packet gets skip-lease plus a flag, turned into drop at
// pre-packet-encode. The client's retransmission finds the answer.
//
// The script speaks LDAP itself (simple bind, one search, BER encoded by
// hand) over a plain TCP connection per query. The search filter is built
// as BER structure, not as text: the DUID is an octet string inside an
// equality match, so no client data is ever parsed as filter syntax.
// For TLS, pooling and fail-over use the ldap-cache built-in.
//
// Points: post-packet-decode, generate-lease, pre-packet-encode.
// Allow: network, goroutines, and files: [the password file].
//
// init-args:
//
//	address         host:port of the directory (required)
//	bind-dn         DN to bind as (empty: anonymous)
//	password-file   file holding the bind password
//	base-dn         where to search (required; subtree)
//	duid-attribute  attribute holding the client DUID in hex (default hook6ClientDUID)
//	attributes      "ldapAttribute=env.key, …" (required), e.g.
//	                "hook6DelegatedPrefix=ldap.prefix, hook6Address=ldap.address"
//	ttl             how long an entry is fresh (default 5m)
//	negative-ttl    how long "not in the directory" is fresh (default 1m)
//	max-stale       how long past its TTL an entry is served while the
//	                directory fails (default 1h)
//	timeout         bound of one query (default 2s)
//	workers         concurrent queries (default 4); a miss finding every
//	                worker busy is dropped and asked again at retransmission
//	size            most clients cached (default 100000)
//	flag            env key of the pending flag (default async-pending)
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hook6/hook6/hooks"
)

type entry struct {
	values     map[string]string // env key → value; nil when not found
	freshUntil time.Time
	staleUntil time.Time
	failed     bool // the last refresh failed
	unused     bool // fetched for a waiting client, not yet served
}

var (
	address, bindDN, password, baseDN, duidAttr, flag string

	attrs     map[string]string // lower-case LDAP attribute → env key
	attrNames []string
	ttl       time.Duration
	negTTL    time.Duration
	maxStale  time.Duration
	timeout   time.Duration
	size      int

	mu      sync.Mutex
	cache   = map[string]*entry{}
	pending = map[string]bool{}
	failing bool      // the last query failed
	slots   chan bool // one per running query
)

func Init(args map[string]string) error {
	address, bindDN, baseDN = args["address"], args["bind-dn"], args["base-dn"]
	if address == "" || baseDN == "" {
		return errors.New("init-args address and base-dn are required")
	}
	if f := args["password-file"]; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading the password: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	duidAttr = or(args["duid-attribute"], "hook6ClientDUID")
	flag = or(args["flag"], "async-pending")
	attrs = map[string]string{}
	for _, pair := range strings.Split(args["attributes"], ",") {
		a, k, ok := strings.Cut(pair, "=")
		a, k = strings.TrimSpace(a), strings.TrimSpace(k)
		if !ok || a == "" || k == "" {
			continue
		}
		attrs[strings.ToLower(a)] = k
		attrNames = append(attrNames, a)
	}
	if len(attrs) == 0 {
		return errors.New("init-args attributes is required: ldapAttribute=env.key, …")
	}
	var err error
	durations := []struct {
		p   *time.Duration
		key string
		def string
	}{{&ttl, "ttl", "5m"}, {&negTTL, "negative-ttl", "1m"}, {&maxStale, "max-stale", "1h"}, {&timeout, "timeout", "2s"}}
	for _, d := range durations {
		if *d.p, err = time.ParseDuration(or(args[d.key], d.def)); err != nil {
			return fmt.Errorf("init-args %s: %w", d.key, err)
		}
	}
	workers, err := strconv.Atoi(or(args["workers"], "4"))
	if err != nil || workers < 1 {
		return fmt.Errorf("init-args workers %q: want a positive number", args["workers"])
	}
	slots = make(chan bool, workers)
	if size, err = strconv.Atoi(or(args["size"], "100000")); err != nil || size < 1 {
		return fmt.Errorf("init-args size %q: want a positive number", args["size"])
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// PostPacketDecode puts the client's cached entry in the env, or flags the
// packet while its entry is fetched.
func PostPacketDecode(c *hooks.Context) error {
	duid := c.Env.Value(hooks.KeyClientDUID)
	if duid == "" {
		return nil
	}
	values, ok := lookup(duid)
	if !ok {
		return c.Env.Set(flag, "true")
	}
	for k, v := range values {
		if err := c.Env.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// GenerateLease gives no lease to a pending packet (drop may not be set
// here).
func GenerateLease(c *hooks.Context) error {
	if c.Env.IsTrue(flag) {
		return c.SkipLease()
	}
	return nil
}

// PrePacketEncode drops a pending packet.
func PrePacketEncode(c *hooks.Context) error {
	if c.Env.IsTrue(flag) {
		return c.Drop()
	}
	return nil
}

// lookup returns the usable cached values of duid and starts a query when
// the entry is missing or stale. A stale entry is served only when its
// refresh failed or the directory is failing.
func lookup(duid string) (map[string]string, bool) {
	now := time.Now()
	mu.Lock()
	defer mu.Unlock()
	e := cache[duid]
	if e != nil && now.Before(e.staleUntil) && (now.Before(e.freshUntil) || e.unused) {
		// An answer fetched for this client serves its next packet even
		// when that comes after the TTL: it must not wait forever.
		e.unused = false
		return e.values, true
	}
	if !pending[duid] {
		select {
		case slots <- true:
			pending[duid] = true
			go query(duid)
		default: // every worker busy: the retransmission asks again
		}
	}
	if e != nil && now.Before(e.staleUntil) && (e.failed || failing) {
		return e.values, true
	}
	return nil, false
}

// query asks the directory and stores the answer.
func query(duid string) {
	values, found, err := safeSearch(duid)
	<-slots
	mu.Lock()
	defer mu.Unlock()
	delete(pending, duid)
	now := time.Now()
	if err != nil {
		failing = true
		if e := cache[duid]; e != nil {
			e.failed = true
		}
		return
	}
	failing = false
	life := ttl
	if !found {
		life = negTTL // search returned no values
	}
	if len(cache) >= size && cache[duid] == nil {
		evict(now)
	}
	cache[duid] = &entry{values: values, freshUntil: now.Add(life), staleUntil: now.Add(life + maxStale), unused: true}
}

// evict makes room: entries past max-stale go first, then any (map order
// is random).
func evict(now time.Time) {
	for k, e := range cache {
		if !now.Before(e.staleUntil) {
			delete(cache, k)
		}
	}
	for k := range cache {
		if len(cache) < size {
			break
		}
		delete(cache, k)
	}
}

// safeSearch is search with a panic turned into an error: a panic in a
// script's goroutine would stop the server.
func safeSearch(duid string) (values map[string]string, found bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("query panicked: %v", r)
		}
	}()
	return search(duid)
}

// search binds and searches for the entry of duid on a new connection.
func search(duid string) (map[string]string, bool, error) {
	conn, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(conn)
	if bindDN != "" {
		bind := tlv(0x60, cat(integer(0x02, 3), tlv(0x04, []byte(bindDN)), tlv(0x80, []byte(password))))
		if _, err := conn.Write(message(1, bind)); err != nil {
			return nil, false, err
		}
		op, err := readOp(r)
		if err != nil {
			return nil, false, err
		}
		if err := result(op, 0x61); err != nil {
			return nil, false, fmt.Errorf("bind: %w", err)
		}
	}
	var names []byte
	for _, a := range attrNames {
		names = append(names, tlv(0x04, []byte(a))...)
	}
	filter := tlv(0xa3, cat(tlv(0x04, []byte(duidAttr)), tlv(0x04, []byte(duid)))) // equalityMatch
	req := tlv(0x63, cat(tlv(0x04, []byte(baseDN)), integer(0x0a, 2), integer(0x0a, 0), integer(0x02, 2),
		integer(0x02, int(timeout/time.Second)+1), tlv(0x01, []byte{0}), filter, tlv(0x30, names)))
	if _, err := conn.Write(message(2, req)); err != nil {
		return nil, false, err
	}
	var entries []map[string]string
	for {
		op, err := readOp(r)
		if err != nil {
			return nil, false, err
		}
		switch op.tag {
		case 0x64: // searchResEntry
			e, err := entryValues(op.content)
			if err != nil {
				return nil, false, err
			}
			entries = append(entries, e)
		case 0x65: // searchResDone
			err := result(op, 0x65)
			conn.Write(message(3, tlv(0x42, nil))) // unbind
			switch {
			case len(entries) > 1:
				return nil, false, fmt.Errorf("%d entries have %s=%s", len(entries), duidAttr, duid)
			case err != nil && strings.HasPrefix(err.Error(), "result 32"): // noSuchObject
				return nil, false, nil
			case err != nil:
				return nil, false, err
			case len(entries) == 0:
				return nil, false, nil
			}
			return entries[0], true, nil
		}
	}
}

// BER: tag, length, content.

type element struct {
	tag     byte
	content []byte
}

func tlv(tag byte, content []byte) []byte {
	n := len(content)
	var h []byte
	switch {
	case n < 0x80:
		h = []byte{tag, byte(n)}
	case n < 0x100:
		h = []byte{tag, 0x81, byte(n)}
	case n < 0x10000:
		h = []byte{tag, 0x82, byte(n >> 8), byte(n)}
	default:
		h = []byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(h, content...)
}

func integer(tag byte, v int) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v & 0xff)}, b...)
		v >>= 8
		if v == 0 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return tlv(tag, b)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func message(id int, op []byte) []byte { return tlv(0x30, cat(integer(0x02, id), op)) }

// readOp reads one LDAPMessage and returns its protocol operation.
func readOp(r *bufio.Reader) (element, error) {
	msg, err := readElement(r)
	if err != nil {
		return element{}, err
	}
	parts, err := parse(msg.content)
	if err != nil || len(parts) < 2 {
		return element{}, fmt.Errorf("malformed LDAP message")
	}
	return parts[1], nil
}

func readElement(r *bufio.Reader) (element, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return element{}, err
	}
	l, err := r.ReadByte()
	if err != nil {
		return element{}, err
	}
	n := int(l)
	if l&0x80 != 0 {
		k := int(l & 0x7f)
		if k == 0 || k > 3 {
			return element{}, fmt.Errorf("unsupported BER length")
		}
		n = 0
		for i := 0; i < k; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return element{}, err
			}
			n = n<<8 | int(b)
		}
	}
	content := make([]byte, n)
	if _, err := io.ReadFull(r, content); err != nil {
		return element{}, err
	}
	return element{tag: tag, content: content}, nil
}

// parse splits content into its elements.
func parse(b []byte) ([]element, error) {
	var out []element
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated BER")
		}
		tag, n, h := b[0], int(b[1]), 2
		if b[1]&0x80 != 0 {
			k := int(b[1] & 0x7f)
			if k == 0 || k > 3 || len(b) < 2+k {
				return nil, errors.New("bad BER length")
			}
			n = 0
			for i := 0; i < k; i++ {
				n = n<<8 | int(b[2+i])
			}
			h = 2 + k
		}
		if len(b) < h+n {
			return nil, errors.New("truncated BER")
		}
		out = append(out, element{tag: tag, content: b[h : h+n]})
		b = b[h+n:]
	}
	return out, nil
}

// result checks an LDAPResult (resultCode, matchedDN, diagnosticMessage).
func result(op element, tag byte) error {
	if op.tag != tag {
		return fmt.Errorf("unexpected LDAP operation 0x%x", op.tag)
	}
	parts, err := parse(op.content)
	if err != nil || len(parts) < 3 || len(parts[0].content) == 0 {
		return errors.New("malformed LDAP result")
	}
	code := 0
	for _, b := range parts[0].content {
		code = code<<8 | int(b)
	}
	if code != 0 {
		return fmt.Errorf("result %d: %s", code, parts[2].content)
	}
	return nil
}

// entryValues maps a searchResEntry's attributes to env keys (first value).
func entryValues(content []byte) (map[string]string, error) {
	parts, err := parse(content)
	if err != nil || len(parts) < 2 {
		return nil, errors.New("malformed search entry")
	}
	list, err := parse(parts[1].content)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, a := range list {
		ps, err := parse(a.content)
		if err != nil || len(ps) < 2 {
			return nil, errors.New("malformed attribute")
		}
		key, ok := attrs[strings.ToLower(string(ps[0].content))]
		if !ok {
			continue
		}
		vals, err := parse(ps[1].content)
		if err == nil && len(vals) > 0 {
			values[key] = string(vals[0].content)
		}
	}
	return values, nil
}
