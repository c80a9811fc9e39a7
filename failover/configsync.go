package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
)

// Configuration synchronisation (hook6ctl failover sync). RFC 8156 leaves
// it out of scope (RFC 7031 §7.1), so it rides in CONTACT messages as a
// vendor-specific option (OPTION_VENDOR_OPTS, 17) under syncEnterprise: a
// partner that does not know it ignores it, as it ignores any unknown
// option of a keepalive. The primary sends its synced sections in chunks;
// the secondary merges them into its own file, reloads, and answers with
// the result in a CONTACT of its own.

// syncEnterprise is the enterprise number of the vendor option: 32473,
// the number RFC 5612 sets aside for documentation and examples, since
// hook6 has no number of its own; the option never leaves the pair.
const syncEnterprise = 32473

// Sub-options of the sync vendor option.
const (
	subSyncID = 1 // u32: one sync
	subChunk  = 2 // u16 index, u16 count
	subData   = 3 // YAML bytes
	subExact  = 4 // u8: 1 for exact mode
	subResult = 5 // u16 status, message
)

const (
	syncChunk   = 60000
	syncMaxSize = 16 << 20
	syncTimeout = 60 * time.Second
)

// SyncedSections are the configuration sections the primary pushes; the
// secondary keeps every other section (server, control, metrics, log,
// plugins, failover) as it is.
var SyncedSections = []string{"policies", "links", "prefixes", "reservations", "extensions"}

// syncer carries configuration pushes over the connection.
type syncer struct {
	e       *Endpoint
	mu      sync.Mutex
	waiting map[uint32]chan error
	parts   map[uint32]*assembly
}

type assembly struct {
	chunks [][]byte
	got    int
	exact  bool
	size   int
}

func newSyncer(e *Endpoint) *syncer {
	return &syncer{e: e, waiting: map[uint32]chan error{}, parts: map[uint32]*assembly{}}
}

func vendorOption(sub OptionList) Option {
	d := binary.BigEndian.AppendUint32(nil, syncEnterprise)
	return Option{Code: OptVendorOpts, Data: sub.AppendTo(d)}
}

// SyncConfig pushes configuration sections (see ExtractSections) to the
// secondary and waits until it has merged them and reloaded. Only the
// primary pushes, and only while connected.
func (e *Endpoint) SyncConfig(ctx context.Context, sections []byte, exact bool) error {
	if e.cfg.Role != Primary {
		return errors.New("failover sync runs on the primary: it pushes its configuration to the secondary")
	}
	if len(sections) > syncMaxSize {
		return fmt.Errorf("configuration of %d bytes is too large to sync", len(sections))
	}
	e.mu.Lock()
	c, ok := e.conn, e.commOK
	e.mu.Unlock()
	if c == nil || !ok {
		return errors.New("the partner is not connected")
	}
	s := e.syncs
	id := rand.Uint32()
	res := make(chan error, 1)
	s.mu.Lock()
	s.waiting[id] = res
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
	}()
	n := max(1, (len(sections)+syncChunk-1)/syncChunk)
	ex := uint8(0)
	if exact {
		ex = 1
	}
	for i := range n {
		part := sections[min(i*syncChunk, len(sections)):min((i+1)*syncChunk, len(sections))]
		sub := OptionList{OptU32(subSyncID, id), OptU32(subChunk, uint32(i)<<16|uint32(n)), OptU8(subExact, ex),
			{Code: subData, Data: part}}
		c.send(&Message{Type: MsgContact, TxID: e.nextTxID(), Options: OptionList{vendorOption(sub)}})
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	select {
	case err := <-res:
		return err
	case <-c.done:
		return fmt.Errorf("connection to the partner lost during sync: %v", c.err())
	case <-ctx.Done():
		return fmt.Errorf("waiting for the secondary to apply the configuration: %w", ctx.Err())
	}
}

// onContact handles a CONTACT: a keepalive, possibly carrying a sync.
func (s *syncer) onContact(c *conn, m *Message) {
	v, ok := m.Options.Get(OptVendorOpts)
	if !ok || len(v) < 4 || binary.BigEndian.Uint32(v) != syncEnterprise {
		return
	}
	sub, err := ParseOptions(v[4:])
	if err != nil {
		return
	}
	id, ok := sub.U32(subSyncID)
	if !ok {
		return
	}
	if r, ok := sub.Get(subResult); ok {
		s.result(id, r)
		return
	}
	s.chunk(c, id, sub)
}

func (s *syncer) result(id uint32, r []byte) {
	var err error
	if len(r) < 2 {
		err = errors.New("malformed sync result")
	} else if code := binary.BigEndian.Uint16(r); code != StatusSuccess {
		err = fmt.Errorf("secondary refused the configuration: %s", r[2:])
	}
	s.mu.Lock()
	ch := s.waiting[id]
	s.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

func (s *syncer) chunk(c *conn, id uint32, sub OptionList) {
	ci, ok := sub.U32(subChunk)
	data, ok2 := sub.Get(subData)
	idx, n := int(ci>>16), int(ci&0xffff)
	if !ok || !ok2 || n == 0 || idx >= n {
		return
	}
	ex, _ := sub.U8(subExact)
	s.mu.Lock()
	a := s.parts[id]
	if a == nil {
		a = &assembly{chunks: make([][]byte, n), exact: ex == 1}
		s.parts[id] = a
	}
	if len(a.chunks) != n || a.chunks[idx] != nil || a.size+len(data) > syncMaxSize {
		s.mu.Unlock()
		return
	}
	a.chunks[idx] = append([]byte(nil), data...)
	a.got++
	a.size += len(data)
	complete := a.got == n
	if complete {
		delete(s.parts, id)
	}
	s.mu.Unlock()
	if !complete {
		return
	}
	var all []byte
	for _, ch := range a.chunks {
		all = append(all, ch...)
	}
	go s.apply(c, id, all, a.exact)
}

// apply runs the secondary's ApplyConfig and answers the primary.
func (s *syncer) apply(c *conn, id uint32, sections []byte, exact bool) {
	e := s.e
	var err error
	switch {
	case e.cfg.Role != Secondary:
		err = errors.New("only the secondary accepts a configuration push")
	case e.apply == nil:
		err = errors.New("this server does not accept configuration pushes")
	default:
		err = e.apply(sections, exact)
	}
	code, msg := StatusSuccess, "configuration applied"
	if err != nil {
		code, msg = StatusUnspecFail, err.Error()
		e.log.Warn("failover: configuration push refused", "err", err)
	} else {
		e.log.Info("failover: configuration pushed by the primary applied", "exact", exact, "bytes", len(sections))
	}
	res := binary.BigEndian.AppendUint16(nil, code)
	sub := OptionList{OptU32(subSyncID, id), {Code: subResult, Data: append(res, msg...)}}
	c.send(&Message{Type: MsgContact, TxID: e.nextTxID(), Options: OptionList{vendorOption(sub)}})
}

// ExtractSections returns the synced sections of a configuration file, as
// YAML.
func ExtractSections(config []byte) ([]byte, error) {
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(config, &doc, yaml.UseOrderedMap()); err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	var out yaml.MapSlice
	for _, it := range doc {
		if synced(it.Key) {
			out = append(out, it)
		}
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the synced sections: %w", err)
	}
	return b, nil
}

func synced(k any) bool {
	s, _ := k.(string)
	for _, n := range SyncedSections {
		if s == n {
			return true
		}
	}
	return false
}

// MergeConfig applies pushed sections to the local configuration file.
// In exact mode each synced section becomes exactly the pushed one (and
// a section the primary lacks is removed); otherwise items are merged by
// name (policies by key, links, prefixes and extensions by name,
// reservations by DUID): pushed items replace or add, local-only items
// stay. Sections that are not synced are kept as they are.
func MergeConfig(local, pushed []byte, exact bool) ([]byte, error) {
	var doc, push yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(local, &doc, yaml.UseOrderedMap()); err != nil {
		return nil, fmt.Errorf("reading the local configuration: %w", err)
	}
	if err := yaml.UnmarshalWithOptions(pushed, &push, yaml.UseOrderedMap()); err != nil {
		return nil, fmt.Errorf("reading the pushed configuration: %w", err)
	}
	for _, it := range push {
		if !synced(it.Key) {
			return nil, fmt.Errorf("pushed configuration holds section %v, which is not synced", it.Key)
		}
	}
	var out yaml.MapSlice
	seen := map[string]bool{}
	for _, it := range doc {
		key, _ := it.Key.(string)
		if !synced(key) {
			out = append(out, it)
			continue
		}
		seen[key] = true
		pv, ok := lookup(push, key)
		switch {
		case !ok && exact:
			continue
		case !ok:
			out = append(out, it)
		case exact:
			out = append(out, yaml.MapItem{Key: key, Value: pv})
		default:
			out = append(out, yaml.MapItem{Key: key, Value: mergeSection(key, it.Value, pv)})
		}
	}
	for _, it := range push {
		if key, _ := it.Key.(string); !seen[key] {
			out = append(out, it)
		}
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the merged configuration: %w", err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b, nil
}

func lookup(ms yaml.MapSlice, key string) (any, bool) {
	for _, it := range ms {
		if k, _ := it.Key.(string); k == key {
			return it.Value, true
		}
	}
	return nil, false
}

// mergeSection merges one section by item identity.
func mergeSection(key string, local, pushed any) any {
	if lm, ok := local.(yaml.MapSlice); ok {
		pm, ok := pushed.(yaml.MapSlice)
		if !ok {
			return pushed
		}
		out := append(yaml.MapSlice(nil), lm...)
		for _, it := range pm {
			replaced := false
			for i := range out {
				if out[i].Key == it.Key {
					out[i].Value, replaced = it.Value, true
				}
			}
			if !replaced {
				out = append(out, it)
			}
		}
		return out
	}
	ll, ok1 := local.([]any)
	pl, ok2 := pushed.([]any)
	if !ok1 || !ok2 {
		return pushed
	}
	idField := "name"
	if key == "reservations" {
		idField = "duid"
	}
	out := append([]any(nil), ll...)
	for _, p := range pl {
		id, ok := itemID(p, idField)
		replaced := false
		if ok {
			for i := range out {
				if lid, ok := itemID(out[i], idField); ok && lid == id {
					out[i], replaced = p, true
				}
			}
		}
		if !replaced {
			out = append(out, p)
		}
	}
	return out
}

func itemID(v any, field string) (string, bool) {
	m, ok := v.(yaml.MapSlice)
	if !ok {
		return "", false
	}
	for _, it := range m {
		if k, _ := it.Key.(string); k == field {
			return fmt.Sprint(it.Value), true
		}
	}
	return "", false
}
