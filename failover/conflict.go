package failover

import (
	"bytes"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// skew is the clock difference partners tolerate; times closer than this
// compare as equal (§7.1, §7.5.1).
const skew = 5 * time.Second

// later reports whether a is clearly later than b.
func later(a, b time.Time) bool { return a.Sub(b) > skew }

// ends reports whether a binding-status says no client holds the lease.
func ends(s uint8) bool {
	switch s {
	case bsExpired, bsReleased, bsPendingFree, bsFree, bsFreeBackup, bsReset:
		return true
	}
	return false
}

// verdict is the outcome of conflict resolution for one received binding.
type verdict struct {
	accept bool
	status uint16 // when rejected
	msg    string
}

func acceptIt() verdict { return verdict{accept: true} }

func reject(code uint16, msg string) verdict { return verdict{status: code, msg: msg} }

// resolve decides whether a received binding replaces the local lease
// (nil when there is none), per RFC 8156 Figure 4, at now. fromPartner
// is true when the local lease is exactly the version the partner itself
// sent last: the partner refining its own information is never outdated
// by it. r is the receiving endpoint's role.
//
// One deliberate difference from Figure 4: for the same client, an update
// that is clearly older than the local binding is rejected (the RFC
// accepts it), so newer information always wins and the older side is
// brought up to date by the newer side's own update.
func resolve(local *lease.Lease, fromPartner bool, b *binding, now time.Time, r Role) verdict {
	if local == nil {
		return acceptIt() // FREE locally: accept
	}
	upd := b.updateTime()
	loc := local.Updated
	if loc.IsZero() {
		loc = local.Start
	}
	timeOK := later(upd, loc) || (fromPartner && !upd.Before(loc.Add(-skew)))
	outdated := reject(StatusOutdatedBindingInformation, "local binding is newer")
	switch statusOf(local, now) {
	case bsActive:
		switch b.Status {
		case bsActive:
			if bytes.Equal(local.DUID, b.DUID) {
				if later(loc, upd) && !fromPartner {
					return outdated
				}
				return acceptIt()
			}
			// accept(3): different clients.
			if (!b.CLT.IsZero() && later(b.CLT, local.Start)) || r == Secondary || fromPartner {
				return acceptIt()
			}
			return reject(StatusAddressInUse, "address leased to another client")
		case bsExpired, bsFree, bsFreeBackup:
			// time(1): the local lease must have run out.
			if now.After(local.Expires) || fromPartner {
				return acceptIt()
			}
			return reject(StatusOutdatedBindingInformation, "local lease has not expired")
		default: // RELEASED, RESET, ABANDONED: accept a later update
			if timeOK {
				return acceptIt()
			}
			return outdated
		}
	default:
		// EXPIRED, RELEASED, ABANDONED locally (FREE is handled above):
		// accept a later update; an update that also ends the binding is
		// accepted unless clearly older (both agree it is over).
		if timeOK || (ends(b.Status) && !later(loc, upd)) {
			return acceptIt()
		}
		return outdated
	}
}
