package failover

import (
	"context"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// storeTimeout bounds the durable write of a received update.
const storeTimeout = 30 * time.Second

// onBndUpd applies a binding update and acknowledges it once it is durable
// (§7.5).
func (e *Endpoint) onBndUpd(c *conn, m *Message) {
	now := e.now()
	if data, ok := m.Options.Get(OptClientData); ok {
		c.send(&Message{Type: MsgBndReply, TxID: m.TxID, Options: OptionList{e.applyClientData(data, now)}})
		return
	}
	if data, ok := m.Options.Get(OptIAPrefix); ok {
		c.send(&Message{Type: MsgBndReply, TxID: m.TxID, Options: OptionList{e.applyBlock(data, now)}})
		return
	}
	c.send(&Message{Type: MsgBndReply, TxID: m.TxID,
		Options: OptionList{OptStatus(StatusMissingBindingInformation, "BNDUPD without CLIENT_DATA or IAPREFIX")}})
}

// applyClientData resolves each address or prefix of a client's update
// against the local lease, stores the accepted ones and returns the
// BNDREPLY's CLIENT_DATA.
func (e *Endpoint) applyClientData(data []byte, now time.Time) Option {
	duid, items, bad, msg := parseClientData(data, now)
	if bad != 0 {
		e.stats.rejected.Add(1)
		return replyClientData(duid, nil, bad, msg)
	}
	e.stats.received.Add(uint64(len(items)))
	lo := e.layout.Load()
	replies := make([]replyItem, len(items))
	kept := make([]int, len(items)) // index in puts, -1: removed
	var puts []lease.Lease
	var dels []netip.Prefix
	var accepted []int
	for i := range items {
		it := &items[i]
		replies[i] = replyItem{b: it.b}
		if it.bad != 0 {
			replies[i].status, replies[i].msg = it.bad, it.msg
			e.stats.rejected.Add(1)
			continue
		}
		pfx, ok := lo.locate(it.b.Prefix, it.b.Kind)
		if !ok {
			replies[i].status, replies[i].msg = StatusConfigurationConflict, "not inside any configured prefix"
			e.stats.rejected.Add(1)
			continue
		}
		local, has := e.store.Get(it.b.Prefix)
		var lp *lease.Lease
		fromPartner := false
		if has {
			lp = &local
			rec, known := e.rep.acks.get(keyOf(it.b.Prefix))
			fromPartner = known && rec.fromPartner && rec.updated == nanos(local.Updated)
		}
		v := resolve(lp, fromPartner, &it.b, now, e.cfg.Role)
		if !v.accept {
			replies[i].status, replies[i].msg = v.status, v.msg
			e.stats.rejected.Add(1)
			if v.status == StatusAddressInUse {
				e.stats.conflicts.Add(1)
				e.log.Warn("failover: partner leased an address this server leases to another client",
					"lease", it.b.Prefix)
			}
			if has {
				e.needsUpdate(local, now)
			}
			continue
		}
		kept[i] = -1
		if l, keep := it.b.leaseOf(pfx.Link, pfx.Name); keep {
			kept[i] = len(puts)
			puts = append(puts, l)
		} else if has {
			dels = append(dels, it.b.Prefix)
		}
		accepted = append(accepted, i)
	}
	if len(puts) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := e.store.Put(ctx, puts...)
		cancel()
		if err != nil {
			return e.storeFailed(duid, replies, accepted, err)
		}
	}
	if len(dels) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := e.store.Delete(ctx, dels...)
		cancel()
		if err != nil {
			return e.storeFailed(duid, replies, accepted, err)
		}
	}
	for _, i := range accepted {
		k := keyOf(items[i].b.Prefix)
		if kept[i] < 0 {
			e.rep.acks.del(k)
			e.meta.delAcked(k)
			e.meta.delTomb(k)
			continue
		}
		l := &puts[kept[i]]
		end := l.Expires
		if pl := items[i].b.PartnerLifetime; pl.After(end) {
			end = pl
		}
		rec := ackRec{updated: nanos(l.Updated), end: nanos(end), state: l.State, fromPartner: true}
		e.rep.acks.set(k, rec)
		e.meta.putAcked(k, rec)
	}
	return replyClientData(duid, replies, 0, "")
}

// storeFailed rejects the accepted items of an update that could not be
// written (the partner sends them again later).
func (e *Endpoint) storeFailed(duid []byte, replies []replyItem, accepted []int, err error) Option {
	e.log.Error("failover: storing the partner's update", "err", err)
	for _, i := range accepted {
		replies[i].status, replies[i].msg = StatusUnspecFail, "could not store the update"
	}
	return replyClientData(duid, replies, 0, "")
}

// needsUpdate follows a rejection as Outdated: the local version should
// reach the partner. It is sent at once only if it was not already
// waiting (§7.5.4), so two partners that disagree do not loop.
func (e *Endpoint) needsUpdate(local lease.Lease, now time.Time) {
	k := keyOf(local.Prefix)
	rec, ok := e.rep.acks.get(k)
	if ok && rec.updated == nanos(local.Updated) && rec.state == local.State {
		e.rep.acks.del(k) // the partner no longer holds our version
		e.rep.push(local, now)
	}
}

// applyBlock handles a delegable prefix handed over by the primary:
// FREE-BACKUP gives it to the secondary, FREE takes it back (§4.2.2).
func (e *Endpoint) applyBlock(data []byte, now time.Time) Option {
	p, _, _, in, err := parseLeaseOption(Option{Code: OptIAPrefix, Data: data})
	st, _ := in.U8(OptBindingStatus)
	answer := func(code uint16, msg string) Option {
		var os OptionList
		if code != StatusSuccess {
			os = append(os, OptStatus(code, msg))
			e.stats.rejected.Add(1)
		}
		os = append(os, OptU8(OptBindingStatus, st))
		return leaseOption(p, lease.PD, 0, 0, os)
	}
	if err != nil {
		return answer(StatusMissingBindingInformation, err.Error())
	}
	block, _, ok := blockOf(e.layout.Load(), p)
	if !ok || block != p {
		return answer(StatusConfigurationConflict, "not a delegable prefix block of this server's configuration")
	}
	if e.cfg.Role != Secondary {
		return answer(StatusConfigurationConflict, "only the primary hands out delegable prefixes")
	}
	var owner Role
	switch st {
	case bsFreeBackup:
		owner = Secondary
	case bsFree:
		if e.blockInUse(p, now) {
			return answer(StatusAddressInUse, "this server has delegated prefixes of the block")
		}
		owner = Primary
	default:
		return answer(StatusConfigurationConflict, "a block can only be FREE or FREE-BACKUP")
	}
	if err := e.meta.savePool(keyOf(p), owner); err != nil {
		e.log.Error("failover: storing a block's owner", "block", p, "err", err)
		return answer(StatusUnspecFail, "could not store the block's owner")
	}
	e.pools.setOwner(p, owner)
	e.log.Info("failover: delegable prefix block handed over", "block", p, "owner", owner)
	return answer(StatusSuccess, "")
}

// blockInUse reports whether this server delegated an active prefix of
// block itself (not one it only learnt from the partner).
func (e *Endpoint) blockInUse(block netip.Prefix, now time.Time) bool {
	for _, l := range e.store.Overlapping(block) {
		if !l.Active(now) {
			continue
		}
		rec, ok := e.rep.acks.get(keyOf(l.Prefix))
		if !ok || !rec.fromPartner || rec.updated != nanos(l.Updated) {
			return true
		}
	}
	return false
}

// onPoolReq answers the secondary's POOLREQ and queues the blocks that
// bring the pools to the configured split (§5.3.3, §5.3.4).
func (e *Endpoint) onPoolReq(c *conn, m *Message) {
	if e.cfg.Role != Primary {
		e.log.Warn("failover: POOLREQ received by the secondary; ignored")
		return
	}
	c.send(&Message{Type: MsgPoolResp, TxID: m.TxID})
	e.mu.Lock()
	e.rebalanceLocked()
	e.mu.Unlock()
}

// rebalanceLocked queues the block hand-overs that restore the split.
func (e *Endpoint) rebalanceLocked() {
	moves := e.pools.rebalance(e.layout.Load(), e.store, e.now())
	for _, mv := range moves {
		if mv.status == bsFreeBackup {
			e.pools.setGiving(mv.block, true)
		}
	}
	if len(moves) > 0 {
		e.log.Info("failover: rebalancing delegable prefixes", "moves", len(moves))
	}
	e.rep.queueMoves(moves)
}

// onMoveAck records the secondary's answer to a block hand-over.
func (e *Endpoint) onMoveAck(mv move, status uint16, msg string) {
	if status != StatusSuccess {
		e.pools.setGiving(mv.block, false)
		e.log.Info("failover: partner refused a block hand-over", "block", mv.block, "status", status, "message", msg)
		return
	}
	owner := Secondary
	if mv.status == bsFree {
		owner = Primary
	}
	if err := e.meta.savePool(keyOf(mv.block), owner); err != nil {
		e.log.Error("failover: storing a block's owner", "block", mv.block, "err", err)
	}
	e.pools.setOwner(mv.block, owner)
}
