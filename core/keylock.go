package core

import "sync"

// keyLocks serialises work per key (a client's DUID) without making
// unrelated clients wait for each other, as striped locks would while one
// client's commit waits for the disk.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock function.
func (k *keyLocks) lock(key []byte) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[string(key)]
	if l == nil {
		l = &keyLock{}
		k.locks[string(key)] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, string(key))
		}
		k.mu.Unlock()
	}
}
