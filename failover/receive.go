package failover

import (
	"context"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// storeTimeout bounds the durable write of a received update.
const storeTimeout = 30 * time.Second

// maxApplyBatch bounds the BNDUPDs stored in one commit.
const maxApplyBatch = 512

// applyGather is how long a batch waits for more BNDUPDs after its first:
// under load it turns hundreds of small commits (each an fsync) into a
// few large ones; the partner's window keeps updates flowing meanwhile.
const applyGather = 2 * time.Millisecond

// applier stores the BNDUPDs received on c in batches: it takes what has
// arrived, resolves every binding against the local leases, writes all
// the accepted ones in one durable commit, and only then acknowledges
// each BNDUPD (§7.5.2). The partner never has two updates of one lease
// in flight, so the order inside a batch does not matter.
func (e *Endpoint) applier(c *conn) {
	batch := make([]*Message, 0, maxApplyBatch)
	for {
		select {
		case <-c.done:
			return
		case m := <-c.upd:
			batch = append(batch[:0], m)
		}
		gather := time.NewTimer(applyGather)
	fill:
		for len(batch) < maxApplyBatch {
			select {
			case m := <-c.upd:
				batch = append(batch, m)
			case <-gather.C:
				break fill
			}
		}
		gather.Stop()
		e.applyBatch(c, batch)
	}
}

// update is one received BNDUPD being applied.
type update struct {
	m       *Message
	duid    []byte
	items   []received
	replies []replyItem
	kept    []int // index in the batch's puts, -1: removed
	reply   Option
	done    bool // reply is final
}

func (e *Endpoint) applyBatch(c *conn, ms []*Message) {
	now := e.now()
	ups := make([]*update, len(ms))
	var puts []lease.Lease
	var dels []netip.Prefix
	for i, m := range ms {
		u := &update{m: m}
		ups[i] = u
		if data, ok := m.Options.Get(OptClientData); ok {
			e.resolveClientData(u, data, now, &puts, &dels)
			continue
		}
		u.done = true
		if data, ok := m.Options.Get(OptIAPrefix); ok {
			u.reply = e.applyBlock(data, now)
		} else {
			u.reply = OptStatus(StatusMissingBindingInformation, "BNDUPD without CLIENT_DATA or IAPREFIX")
		}
	}
	err := e.storeBatch(puts, dels)
	for _, u := range ups {
		if !u.done {
			u.reply = e.finishClientData(u, puts, err)
		}
		c.send(&Message{Type: MsgBndReply, TxID: u.m.TxID, Options: OptionList{u.reply}})
	}
}

// storeBatch writes the accepted changes of a batch durably.
func (e *Endpoint) storeBatch(puts []lease.Lease, dels []netip.Prefix) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := e.store.Put(ctx, puts...); err != nil {
		return err
	}
	return e.store.Delete(ctx, dels...)
}

// resolveClientData decides each address or prefix of a client's update
// against the local lease, adding the accepted changes to puts and dels.
func (e *Endpoint) resolveClientData(u *update, data []byte, now time.Time, puts *[]lease.Lease, dels *[]netip.Prefix) {
	duid, items, bad, msg := parseClientData(data, now)
	u.duid = duid
	if bad != 0 {
		e.stats.rejected.Add(1)
		u.reply, u.done = replyClientData(duid, nil, bad, msg), true
		return
	}
	e.stats.received.Add(uint64(len(items)))
	lo := e.layout.Load()
	u.items, u.replies, u.kept = items, make([]replyItem, len(items)), make([]int, len(items))
	for i := range items {
		it := &items[i]
		u.replies[i] = replyItem{b: it.b, status: StatusUnspecFail}
		u.kept[i] = -2 // rejected
		if it.bad != 0 {
			u.replies[i].status, u.replies[i].msg = it.bad, it.msg
			e.stats.rejected.Add(1)
			continue
		}
		pfx, ok := lo.locate(it.b.Prefix, it.b.Kind)
		if !ok {
			u.replies[i].status, u.replies[i].msg = StatusConfigurationConflict, "not inside any configured prefix"
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
			u.replies[i].status, u.replies[i].msg = v.status, v.msg
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
		u.replies[i].status = StatusSuccess
		u.kept[i] = -1
		if l, keep := it.b.leaseOf(pfx.Link, pfx.Name); keep {
			u.kept[i] = len(*puts)
			*puts = append(*puts, l)
		} else if has {
			*dels = append(*dels, it.b.Prefix)
		}
	}
}

// finishClientData records what the partner now holds for the accepted
// items (once they are durable) and builds the BNDREPLY's CLIENT_DATA. If
// the batch could not be stored, accepted items are answered UnspecFail
// (the partner sends them again later).
func (e *Endpoint) finishClientData(u *update, puts []lease.Lease, err error) Option {
	if err != nil {
		e.log.Error("failover: storing the partner's update", "err", err)
	}
	for i := range u.items {
		if u.kept[i] == -2 {
			continue
		}
		if err != nil {
			u.replies[i].status, u.replies[i].msg = StatusUnspecFail, "could not store the update"
			continue
		}
		k := keyOf(u.items[i].b.Prefix)
		if u.kept[i] < 0 {
			e.rep.acks.del(k)
			e.jrnl.delAcked(k)
			e.rep.forgetTomb(k)
			continue
		}
		l := &puts[u.kept[i]]
		e.rep.forgetTomb(k) // the partner's version replaces a removal of ours
		end := l.Expires
		if pl := u.items[i].b.PartnerLifetime; pl.After(end) {
			end = pl
		}
		rec := ackRec{updated: nanos(l.Updated), end: nanos(end), state: l.State, fromPartner: true}
		e.rep.acks.set(k, rec)
		e.jrnl.putAcked(k, rec)
	}
	return replyClientData(u.duid, u.replies, 0, "")
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
