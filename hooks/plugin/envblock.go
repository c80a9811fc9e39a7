package plugin

import (
	"encoding/binary"

	"github.com/hook6/hook6/hooks"
)

// An env block carries environment entries on the wire: sorted by key,
// each uvarint(len(key)) key uvarint(len(value)) value (see
// proto/extension.proto).

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

func appendEntry(b []byte, k, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// envBlock encodes the whole environment.
func envBlock(env *hooks.Env) []byte {
	keys := env.Keys()
	n := 0
	for _, k := range keys {
		v := env.Value(k)
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	b := make([]byte, 0, n)
	for _, k := range keys {
		b = appendEntry(b, k, env.Value(k))
	}
	return b
}

// envReader reads an env block entry by entry. Its strings share the
// block's memory (see stringOf).
type envReader struct{ b []byte }

// next returns the next entry; ok is false at the end or when the block is
// malformed (err says which).
func (r *envReader) next() (k, v string, ok bool, err error) {
	if len(r.b) == 0 {
		return "", "", false, nil
	}
	if k, err = r.field(); err == nil {
		v, err = r.field()
	}
	if err != nil {
		return "", "", false, err
	}
	return k, v, true, nil
}

func (r *envReader) field() (string, error) {
	n, w := binary.Uvarint(r.b)
	if w <= 0 || n > uint64(len(r.b)-w) {
		return "", garbage("env block truncated")
	}
	s := stringOf(r.b[w : w+int(n)])
	r.b = r.b[w+int(n):]
	return s, nil
}

// walkEnv calls f for every entry of block, stopping at f's first error.
func walkEnv(block []byte, f func(k, v string) error) error {
	r := envReader{block}
	for {
		k, v, ok, err := r.next()
		if !ok {
			return err
		}
		if err := f(k, v); err != nil {
			return err
		}
	}
}

// envChanges compares the environment after a call with the block it was
// built from and returns the keys set or changed (as a block) and the keys
// deleted. before was checked by decodeEnv, so it reads without error.
func envChanges(before []byte, env *hooks.Env) (set []byte, deleted [][]byte) {
	r := envReader{before}
	bk, bv, more, _ := r.next()
	for _, k := range env.Keys() { // sorted, like the block
		for more && bk < k {
			deleted = append(deleted, bytesOf(bk))
			bk, bv, more, _ = r.next()
		}
		v := env.Value(k)
		if more && bk == k {
			same := bv == v
			bk, bv, more, _ = r.next()
			if same {
				continue
			}
		}
		set = appendEntry(set, k, v)
	}
	for more {
		deleted = append(deleted, bytesOf(bk))
		bk, _, more, _ = r.next()
	}
	return set, deleted
}
