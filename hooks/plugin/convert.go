package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hook6/hook6/hooks"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// This file maps hooks.Context to the wire and back: encodeRequest and
// applyResponse run in hook6, decodeRequest and encodeResponse in the
// plugin.

// errGarbage is wrapped by every error about an answer that does not make
// sense (a malformed prefix, edits of something the point does not have).
var errGarbage = errors.New("invalid answer from plugin")

func garbage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errGarbage, fmt.Sprintf(format, args...))
}

// encodeRequest serialises what c exposes at its point.
func encodeRequest(c *hooks.Context, logLevel slog.Level) (*pb.HandleRequest, error) {
	r := &pb.HandleRequest{Point: c.Point.String(), Packet: c.Packet, LogLevel: int32(logLevel)}
	var err error
	if c.Request != nil {
		if r.Request, err = encodeReq(c.Request); err != nil {
			return nil, err
		}
	}
	if c.Response != nil {
		if r.Response, err = encodeResp(c.Response, true); err != nil {
			return nil, err
		}
	}
	if a := c.Allocation; a != nil {
		r.Allocation = &pb.Allocation{Ia: encodeIA(&a.IA), PrefixName: a.PrefixName, From: prefixBytes(a.From),
			Length: uint32(a.Length), Candidate: prefixBytes(a.Candidate), Acceptable: a.Acceptable}
	}
	if ev := c.Event; ev != nil {
		r.Event = &pb.LeaseEvent{Prefix: prefixBytes(ev.Prefix), Type: string(ev.Type), Iaid: ev.IAID, Duid: ev.DUID,
			From: ev.From, To: ev.To, ValidNs: int64(ev.Valid), PreferredNs: int64(ev.Preferred)}
	}
	if c.Env != nil {
		r.Env = envBlock(c.Env)
	}
	return r, nil
}

func encodeReq(q *hooks.Request) (*pb.Request, error) {
	opts, err := optionsBytes(q.Options)
	if err != nil {
		return nil, err
	}
	r := &pb.Request{MessageType: q.MessageType, TransactionId: q.TransactionID, ClientDuid: q.ClientDUID,
		Options: opts, SourceAddr: addrBytes(q.Source.Addr()), SourcePort: uint32(q.Source.Port()),
		Interface: q.Interface, Link: q.Link}
	ias := make([]pb.IA, len(q.IAs))
	r.Ias = make([]*pb.IA, len(q.IAs))
	for i := range q.IAs {
		ias[i].Type, ias[i].Iaid, ias[i].Hints = string(q.IAs[i].Type), q.IAs[i].IAID, prefixListBytes(q.IAs[i].Hints)
		r.Ias[i] = &ias[i]
	}
	relays := make([]pb.Relay, len(q.Relays))
	r.Relays = make([]*pb.Relay, len(q.Relays))
	for i, rl := range q.Relays {
		d := &relays[i]
		d.HopCount, d.LinkAddress, d.PeerAddress = uint32(rl.HopCount), addrBytes(rl.LinkAddress), addrBytes(rl.PeerAddress)
		d.InterfaceId, d.RemoteId, d.ClientLinkLayer = rl.InterfaceID, rl.RemoteID, rl.ClientLinkLayer
		if d.Options, err = optionsBytes(rl.Options); err != nil {
			return nil, err
		}
		r.Relays[i] = d
	}
	return r, nil
}

// encodeResp serialises a response; withOptions says whether to include
// the server's options (hook6 → plugin) or only the edits (the answer).
func encodeResp(s *hooks.Response, withOptions bool) (*pb.Response, error) {
	r := &pb.Response{MessageType: s.MessageType, Preference: uint32(s.Preference), PreferenceSet: s.PreferenceSet,
		Remove: make([]uint32, len(s.Remove))}
	var err error
	if withOptions {
		if r.Options, err = optionsBytes(s.Options); err != nil {
			return nil, err
		}
	}
	if r.Add, err = optionsBytes(s.Add); err != nil {
		return nil, err
	}
	for i, code := range s.Remove {
		r.Remove[i] = uint32(code)
	}
	return r, nil
}

func encodeIA(ia *hooks.IA) *pb.IA {
	return &pb.IA{Type: string(ia.Type), Iaid: ia.IAID, Hints: prefixListBytes(ia.Hints)}
}

func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// applyResponse applies the plugin's answer to c: environment changes,
// response edits, the lease chosen or refused. It applies what it can and
// reports every refusal; the point function's own error comes last.
func applyResponse(c *hooks.Context, r *pb.HandleResponse, log *slog.Logger) error {
	var errs []error
	if c.Env == nil && (len(r.EnvSet) > 0 || len(r.EnvDeleted) > 0) {
		return garbage("environment changes with no environment")
	}
	if err := walkEnv(r.EnvSet, func(string, string) error { return nil }); err != nil {
		return err // malformed: apply nothing
	}
	_ = walkEnv(r.EnvSet, func(k, v string) error {
		if err := c.Env.Set(k, v); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	for _, k := range r.EnvDeleted {
		if err := c.Env.Delete(stringOf(k)); err != nil {
			errs = append(errs, err)
		}
	}
	if r.Response != nil {
		errs = append(errs, applyResp(c, r.Response))
	}
	if r.Allocation != nil {
		errs = append(errs, applyAllocation(c, r.Allocation))
	}
	for _, rec := range r.Logs {
		emit(c.Ctx, log, rec)
	}
	if r.Error != "" {
		errs = append(errs, errors.New(r.Error))
	}
	return errors.Join(errs...)
}

func applyResp(c *hooks.Context, r *pb.Response) error {
	if c.Response == nil {
		return garbage("response edits at %s, which has no response", c.Point)
	}
	if r.Preference > 255 {
		return garbage("preference %d", r.Preference)
	}
	add, err := parseOptions(r.Add)
	if err != nil {
		return err
	}
	remove := make([]uint16, len(r.Remove))
	for i, code := range r.Remove {
		if code > 0xffff {
			return garbage("option code %d", code)
		}
		remove[i] = uint16(code)
	}
	s := c.Response
	s.Add, s.Remove = add, remove
	s.Preference, s.PreferenceSet = uint8(r.Preference), r.PreferenceSet
	return nil
}

func applyAllocation(c *hooks.Context, r *pb.Allocation) error {
	a := c.Allocation
	if a == nil {
		return garbage("allocation at %s, which has none", c.Point)
	}
	cand, err := parsePrefix(r.Candidate)
	if err != nil {
		return err
	}
	switch {
	case cand == a.Candidate:
	case c.Point == hooks.GenerateLease:
		if err := c.SetLease(cand); err != nil {
			return err
		}
	default:
		return garbage("candidate changed at %s", c.Point)
	}
	if c.Point == hooks.CheckLeaseAcceptable {
		a.Acceptable = r.Acceptable
	}
	return nil
}

func hookAddr(b []byte) (netip.Addr, error) {
	if len(b) == 0 {
		return netip.Addr{}, nil
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return a, garbage("address %x", b)
	}
	return a, nil
}

// emit logs a record the plugin made through c.Log.
func emit(ctx context.Context, log *slog.Logger, rec *pb.LogRecord) {
	if ctx == nil {
		ctx = context.Background()
	}
	level := slog.Level(rec.Level)
	if !log.Enabled(ctx, level) {
		return
	}
	args := make([]any, 0, len(rec.Attrs))
	for i := 0; i+1 < len(rec.Attrs); i += 2 {
		args = append(args, slog.String(rec.Attrs[i], rec.Attrs[i+1]))
	}
	log.Log(ctx, level, rec.Message, args...)
}

// decodeRequest rebuilds the Context a point function sees in the plugin,
// filling env (empty) with the request's environment.
func decodeRequest(ctx context.Context, r *pb.HandleRequest, log *slog.Logger, env *hooks.Env) (*hooks.Context, error) {
	p, err := hooks.ParsePoint(r.Point)
	if err != nil {
		return nil, err
	}
	if err := decodeEnv(r.Env, env); err != nil {
		return nil, err
	}
	c := &hooks.Context{Point: p, Packet: r.Packet, Env: env, Log: log, Ctx: ctx}
	env.AtPoint(p)
	if r.Request != nil {
		if c.Request, err = decodeReq(r.Request); err != nil {
			return nil, err
		}
	}
	if s := r.Response; s != nil {
		if c.Response, err = decodeResp(s); err != nil {
			return nil, err
		}
	}
	if a := r.Allocation; a != nil {
		c.Allocation = &hooks.Allocation{PrefixName: a.PrefixName, Length: int(a.Length), Acceptable: a.Acceptable}
		if err := decodeIA(a.Ia, &c.Allocation.IA); err != nil {
			return nil, err
		}
		if c.Allocation.From, err = parsePrefix(a.From); err != nil {
			return nil, err
		}
		if c.Allocation.Candidate, err = parsePrefix(a.Candidate); err != nil {
			return nil, err
		}
	}
	if ev := r.Event; ev != nil {
		c.Event = &hooks.LeaseEvent{Type: hooks.IAType(ev.Type), IAID: ev.Iaid, DUID: ev.Duid, From: ev.From, To: ev.To,
			Valid: time.Duration(ev.ValidNs), Preferred: time.Duration(ev.PreferredNs)}
		if c.Event.Prefix, err = parsePrefix(ev.Prefix); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func decodeResp(s *pb.Response) (*hooks.Response, error) {
	r := &hooks.Response{MessageType: s.MessageType, Preference: uint8(s.Preference), PreferenceSet: s.PreferenceSet}
	var err error
	if r.Options, err = parseOptions(s.Options); err != nil {
		return nil, err
	}
	if r.Add, err = parseOptions(s.Add); err != nil {
		return nil, err
	}
	r.Remove = make([]uint16, len(s.Remove))
	for i, code := range s.Remove {
		r.Remove[i] = uint16(code)
	}
	return r, nil
}

func decodeEnv(block []byte, env *hooks.Env) error {
	return walkEnv(block, func(k, v string) error {
		if hooks.IsServerKey(k) {
			env.SetServer(k, v)
		} else {
			_ = env.Set(k, v) // before AtPoint nothing is refused
		}
		return nil
	})
}

func decodeReq(r *pb.Request) (*hooks.Request, error) {
	q := &hooks.Request{MessageType: r.MessageType, TransactionID: r.TransactionId, ClientDUID: r.ClientDuid,
		Interface: r.Interface, Link: r.Link}
	var err error
	if q.Options, err = parseOptions(r.Options); err != nil {
		return nil, err
	}
	src, err := hookAddr(r.SourceAddr)
	if err != nil {
		return nil, err
	}
	q.Source = netip.AddrPortFrom(src, uint16(r.SourcePort))
	q.IAs = make([]hooks.IA, len(r.Ias))
	for i, ia := range r.Ias {
		if err := decodeIA(ia, &q.IAs[i]); err != nil {
			return nil, err
		}
	}
	q.Relays = make([]hooks.Relay, len(r.Relays))
	for i, rl := range r.Relays {
		d := &q.Relays[i]
		d.HopCount, d.InterfaceID, d.RemoteID, d.ClientLinkLayer = uint8(rl.HopCount), rl.InterfaceId, rl.RemoteId, rl.ClientLinkLayer
		if d.Options, err = parseOptions(rl.Options); err != nil {
			return nil, err
		}
		if d.LinkAddress, err = hookAddr(rl.LinkAddress); err != nil {
			return nil, err
		}
		if d.PeerAddress, err = hookAddr(rl.PeerAddress); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func decodeIA(r *pb.IA, ia *hooks.IA) error {
	if r == nil {
		return nil
	}
	ia.Type, ia.IAID = hooks.IAType(r.Type), r.Iaid
	var err error
	ia.Hints, err = parsePrefixList(r.Hints)
	return err
}

// encodeResponse serialises what the point function changed: env keys set
// or deleted relative to before, the response's edits, the allocation.
func encodeResponse(c *hooks.Context, before []byte, callErr error, logs []*pb.LogRecord) *pb.HandleResponse {
	r := &pb.HandleResponse{Logs: logs}
	r.EnvSet, r.EnvDeleted = envChanges(before, c.Env)
	if c.Response != nil {
		var err error
		if r.Response, err = encodeResp(c.Response, false); err != nil {
			callErr = errors.Join(callErr, err)
		}
	}
	if a := c.Allocation; a != nil {
		r.Allocation = &pb.Allocation{Candidate: prefixBytes(a.Candidate), Acceptable: a.Acceptable}
	}
	if callErr != nil {
		r.Error = valid(callErr.Error())
	}
	return r
}
