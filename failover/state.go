package failover

import "fmt"

// State is a failover endpoint state (RFC 8156 §8, values of §5.5.16).
type State uint8

// Endpoint states.
const (
	Startup               State = 1
	Normal                State = 2
	CommInterrupted       State = 3
	PartnerDown           State = 4
	PotentialConflict     State = 5
	Recover               State = 6
	RecoverWait           State = 7
	RecoverDone           State = 8
	ResolutionInterrupted State = 9
	ConflictDone          State = 10
)

var stateNames = [...]string{
	Startup: "startup", Normal: "normal", CommInterrupted: "communications-interrupted",
	PartnerDown: "partner-down", PotentialConflict: "potential-conflict", Recover: "recover",
	RecoverWait: "recover-wait", RecoverDone: "recover-done",
	ResolutionInterrupted: "resolution-interrupted", ConflictDone: "conflict-done",
}

func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	if s == 0 {
		return "none"
	}
	return fmt.Sprintf("state-%d", s)
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s && n != "" {
			return State(i), true
		}
	}
	return 0, false
}

// Role is the endpoint's side of the relationship.
type Role uint8

// Roles.
const (
	Primary   Role = 1
	Secondary Role = 2
)

func (r Role) String() string {
	if r == Primary {
		return "primary"
	}
	return "secondary"
}

// Responsiveness is how a state lets the server answer clients (§3, §8.1).
type Responsiveness uint8

// Responsiveness levels.
const (
	Unresponsive Responsiveness = iota
	// RenewResponsive answers only messages carrying this server's DUID
	// in a Server Identifier option.
	RenewResponsive
	Responsive
)

// responsiveness of s for role r.
func responsiveness(s State, r Role) Responsiveness {
	switch s {
	case Normal:
		if r == Primary {
			return Responsive
		}
		return RenewResponsive
	case CommInterrupted, PartnerDown, ResolutionInterrupted, ConflictDone:
		return Responsive
	case RecoverDone:
		return RenewResponsive
	}
	return Unresponsive
}

// mayAllocate reports whether new leases may be given in s (§8.7.1: none
// in RECOVER-DONE; none in the unresponsive states).
func mayAllocate(s State, r Role) bool {
	return s != RecoverDone && responsiveness(s, r) != Unresponsive
}

// mcltBound reports whether lifetimes are capped by acked partner lifetime
// + MCLT in s (every state but PARTNER-DOWN, §8.4.1).
func mcltBound(s State) bool { return s != PartnerDown }

// sendsLazily reports whether lazy updates flow in s. They stop while the
// databases are being reconciled (RECOVER, RECOVER-WAIT, RECOVER-DONE,
// POTENTIAL-CONFLICT): there updates move only as answers to UPDREQ, in
// the order of §8.5 and §8.10, and what is left is sent on entering
// NORMAL (§8.8).
func sendsLazily(s State) bool {
	switch s {
	case Normal, CommInterrupted, PartnerDown, ResolutionInterrupted, ConflictDone:
		return true
	}
	return false
}

// afterCommFailure is the state a server in s moves to when communications
// stop (§8.x "transition out" rules; also §8.3.2 step 2).
func afterCommFailure(s State) State {
	switch s {
	case Normal:
		return CommInterrupted
	case PotentialConflict:
		return ResolutionInterrupted
	}
	return s
}

// afterCommOK is the state a server in s moves to when it learns (with
// communications OK) that its partner is in p. It does not handle
// STARTUP, and RECOVER's UPDREQ and POTENTIAL-CONFLICT's UPDDONE
// transitions are driven by messages, not by this table.
func afterCommOK(s, p State, r Role) State {
	switch s {
	case Normal:
		switch p {
		case Normal, CommInterrupted, RecoverDone, ConflictDone, Startup:
			return Normal
		}
		// An unexpected partner state: through COMMUNICATIONS-INTERRUPTED
		// (§8.8.2).
		return afterCommOK(CommInterrupted, p, r)
	case CommInterrupted:
		switch p {
		case Normal, CommInterrupted, RecoverDone:
			return Normal
		case Recover, RecoverWait:
			return CommInterrupted
		case PartnerDown, PotentialConflict, ConflictDone, ResolutionInterrupted:
			return PotentialConflict
		}
	case PartnerDown:
		switch p {
		case Normal, CommInterrupted, PartnerDown, PotentialConflict, ResolutionInterrupted, ConflictDone:
			return PotentialConflict
		case RecoverDone:
			return Normal
		}
	case Recover:
		switch p {
		case PotentialConflict, ResolutionInterrupted, ConflictDone:
			return PotentialConflict
		}
	case RecoverDone:
		switch p {
		case Normal, RecoverDone:
			return Normal
		case Recover, RecoverWait:
			return CommInterrupted
		case PotentialConflict:
			return PotentialConflict
		}
	case ResolutionInterrupted:
		return PotentialConflict
	case ConflictDone:
		if p == Normal {
			return Normal
		}
	}
	return s
}
