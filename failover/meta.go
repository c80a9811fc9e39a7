package failover

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hook6/hook6/core/lease"
)

// keyLen is the length of a prefix key: the address, then the length.
const keyLen = 17

// pkey is a prefix as a fixed-size map and database key.
type pkey [keyLen]byte

func keyOf(p netip.Prefix) pkey {
	var k pkey
	a := p.Addr().As16()
	copy(k[:16], a[:])
	k[16] = byte(p.Bits())
	return k
}

func (k pkey) prefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(k[:16])), int(k[16]))
}

// ackRec is what the partner is known to hold for one address or prefix:
// the version (the lease's Updated time) and state it acknowledged or sent
// itself, and the latest time it may consider the lease held by a client
// (the client's expiry or the partner lifetime, whichever is later).
type ackRec struct {
	updated     int64 // Unix nanoseconds of the lease version
	end         int64 // Unix nanoseconds
	state       lease.State
	fromPartner bool // the version came from the partner
}

const ackRecLen = 18

func (r ackRec) encode() []byte {
	b := make([]byte, 0, ackRecLen)
	b = binary.BigEndian.AppendUint64(b, uint64(r.updated))
	b = binary.BigEndian.AppendUint64(b, uint64(r.end))
	fp := byte(0)
	if r.fromPartner {
		fp = 1
	}
	return append(b, byte(r.state), fp)
}

func decodeAck(b []byte) (ackRec, bool) {
	if len(b) != ackRecLen {
		return ackRec{}, false
	}
	return ackRec{updated: int64(binary.BigEndian.Uint64(b)), end: int64(binary.BigEndian.Uint64(b[8:])),
		state: lease.State(b[16]), fromPartner: b[17] == 1}, true
}

// persisted is the endpoint state kept in stable storage (§8.2).
type persisted struct {
	State           State     `json:"state"`
	Previous        State     `json:"previous"`
	Since           time.Time `json:"since"`
	PartnerState    State     `json:"partner-state"`
	PartnerSince    time.Time `json:"partner-since"`
	PartnerDownTime time.Time `json:"partner-down-time"` // when this server entered PARTNER-DOWN
	LastOperation   time.Time `json:"last-operation"`    // last time this server was known running
	LastContact     time.Time `json:"last-contact"`      // last message from the partner
	Communicated    bool      `json:"communicated"`      // has ever talked to the partner
	MCLT            Duration  `json:"mclt"`              // MCLT in use (the secondary adopts the primary's)
	// FailureTime is TIME-OF-FAILURE (§8.3.2) of the latest start, for
	// RECOVER-WAIT.
	FailureTime time.Time `json:"failure-time"`
}

// Duration is a time.Duration that encodes as a string in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

var (
	bucketState = []byte("state")
	bucketPools = []byte("pools")
	keyEndpoint = []byte("endpoint")
	keyName     = []byte("relationship")
)

// meta is failover.db in the state dir: the endpoint state and who owns
// each block of delegable prefixes, both written synchronously (the
// acknowledgements live in the journal).
type meta struct {
	db *bolt.DB
}

func openMeta(path string) (*meta, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("opening failover database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketPools} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising failover database %s: %w", path, err)
	}
	return &meta{db: db}, nil
}

func (m *meta) loadState() (persisted, bool, error) {
	var p persisted
	found := false
	err := m.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketState).Get(keyEndpoint)
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return p, false, fmt.Errorf("reading failover state: %w", err)
	}
	return p, found, nil
}

func (m *meta) saveState(p persisted) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	err = m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketState).Put(keyEndpoint, v) })
	if err != nil {
		return fmt.Errorf("writing failover state: %w", err)
	}
	return nil
}

// loadName returns the relationship the database belongs to, "" when it
// does not say (written before names were kept, or new).
func (m *meta) loadName() (string, error) {
	var name string
	err := m.db.View(func(tx *bolt.Tx) error {
		name = string(tx.Bucket(bucketState).Get(keyName))
		return nil
	})
	return name, err
}

func (m *meta) saveName(name string) error {
	return m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketState).Put(keyName, []byte(name)) })
}

func (m *meta) loadPools() (map[pkey]Role, error) {
	out := map[pkey]Role{}
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPools).ForEach(func(k, v []byte) error {
			if len(k) == keyLen && len(v) == 1 {
				out[pkey(k)] = Role(v[0])
			}
			return nil
		})
	})
	return out, err
}

func (m *meta) savePool(k pkey, owner Role) error {
	return m.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPools).Put(k[:], []byte{byte(owner)}) })
}

// close closes the database.
func (m *meta) close() error {
	if err := m.db.Close(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("closing failover database: %w", err)
	}
	return nil
}
