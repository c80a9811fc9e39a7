package core

import "sync"

// keyLocks serialises work per key (a client's DUID) without making
// unrelated clients wait for each other, as striped locks would while one
// client's commit waits for the disk.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
	free  sync.Pool // locks of keys no one holds or waits for
}

type keyLock struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its lock, to give back to unlock.
func (k *keyLocks) lock(key string) *keyLock {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		if l, _ = k.free.Get().(*keyLock); l == nil {
			l = new(keyLock)
		}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return l
}

// unlock unlocks key's lock l. A lock no one else holds or waits for
// (refs drops to 0 under k.mu, and only k.locks hands it out) is pooled.
func (k *keyLocks) unlock(key string, l *keyLock) {
	l.Unlock()
	k.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(k.locks, key)
	}
	k.mu.Unlock()
	if last {
		k.free.Put(l)
	}
}
