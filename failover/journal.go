package failover

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// The journal (failover.journal in the state dir) keeps what the partner
// has acknowledged and the last version of removed leases the partner has
// not yet acknowledged as removed. It is an append-only file of records,
// written in the background and synced once a second: appending costs a
// fraction of a B-tree update, and losing the last second of records
// after a crash only makes those updates be sent again. It is compacted
// at start and whenever it grows well past what it describes.
//
// Record: u16 length of body, body, CRC-32C of body. Body: kind, 17-byte
// prefix key, then for kindAck an ackRec and for kindTomb and
// kindResetTomb an encoded lease. A torn or corrupt record ends the
// replay; a record of an unknown kind is skipped.
const (
	kindAck       = 1
	kindAckDel    = 2
	kindTomb      = 3
	kindTombDel   = 4
	kindResetTomb = 5 // a tomb of an operator's delete (sent as RESET)

	journalFlush   = time.Second
	journalQueue   = 1 << 16
	journalMinSize = 32 << 20 // compaction is not considered below this
)

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// journalRec is one record to append.
type journalRec struct {
	kind byte
	key  pkey
	data []byte
}

func (r journalRec) appendTo(dst []byte) []byte {
	n := 1 + keyLen + len(r.data)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	start := len(dst)
	dst = append(dst, r.kind)
	dst = append(dst, r.key[:]...)
	dst = append(dst, r.data...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], journalCRC))
}

// journalReplay receives the records of a journal being opened.
type journalReplay struct {
	ack     func(pkey, ackRec)
	ackDel  func(pkey)
	tomb    func(k pkey, l lease.Lease, reset bool)
	tombDel func(pkey)
}

func tombKind(reset bool) byte {
	if reset {
		return kindResetTomb
	}
	return kindTomb
}

// journal appends records in the background.
type journal struct {
	path     string
	log      *slog.Logger
	snapshot func() []journalRec // the live records, for compaction

	mu     sync.RWMutex // guards closed against sends after close
	closed bool
	recs   chan journalRec
	syncs  chan chan error // sync requests
	done   chan struct{}
	f      *os.File
	size   int64
	live   int64 // bytes of the live records at the last compaction
}

// openJournal replays path (creating it if needed) into rp, compacts it
// with snapshot, and starts the background writer.
func openJournal(path string, log *slog.Logger, rp journalReplay, snapshot func() []journalRec) (*journal, error) {
	j := &journal{path: path, log: log, snapshot: snapshot, recs: make(chan journalRec, journalQueue),
		syncs: make(chan chan error), done: make(chan struct{})}
	if err := j.replay(rp); err != nil {
		return nil, err
	}
	if err := j.compact(); err != nil {
		return nil, err
	}
	go j.writer()
	return j, nil
}

func (j *journal) replay(rp journalReplay) error {
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening failover journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil // end, or a torn length: the rest is lost
		}
		body := make([]byte, int(binary.BigEndian.Uint16(hdr[:]))+4)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil
		}
		n := len(body) - 4
		if crc32.Checksum(body[:n], journalCRC) != binary.BigEndian.Uint32(body[n:]) || n < 1+keyLen {
			j.log.Warn("failover journal: corrupt record; the rest is ignored (those updates are sent again)")
			return nil
		}
		k, data := pkey(body[1:1+keyLen]), body[1+keyLen:n]
		switch body[0] {
		case kindAck:
			if rec, ok := decodeAck(data); ok {
				rp.ack(k, rec)
			}
		case kindAckDel:
			rp.ackDel(k)
		case kindTomb, kindResetTomb:
			if l, err := lease.Decode(data); err == nil {
				rp.tomb(k, l, body[0] == kindResetTomb)
			}
		case kindTombDel:
			rp.tombDel(k)
		}
	}
}

// compact rewrites the journal with only the live records.
func (j *journal) compact() error {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("compacting failover journal: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	var buf []byte
	var size int64
	for _, r := range j.snapshot() {
		buf = r.appendTo(buf[:0])
		size += int64(len(buf))
		if _, err := w.Write(buf); err != nil {
			f.Close()
			return fmt.Errorf("compacting failover journal: %w", err)
		}
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("compacting failover journal: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("compacting failover journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening failover journal: %w", err)
	}
	j.size, j.live = size, size
	return nil
}

// add queues a record; it never blocks (a record dropped when the queue is
// full only makes an update be sent again after a restart).
func (j *journal) add(r journalRec) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return
	}
	select {
	case j.recs <- r:
	default:
	}
}

func (j *journal) putAcked(k pkey, r ackRec) {
	j.add(journalRec{kind: kindAck, key: k, data: r.encode()})
}
func (j *journal) delAcked(k pkey) { j.add(journalRec{kind: kindAckDel, key: k}) }
func (j *journal) delTomb(k pkey)  { j.add(journalRec{kind: kindTombDel, key: k}) }

func (j *journal) putTomb(l *lease.Lease, reset bool) {
	v, err := lease.AppendEncoded(nil, l)
	if err == nil {
		j.add(journalRec{kind: tombKind(reset), key: keyOf(l.Prefix), data: v})
	}
}

// writer appends queued records, writing and syncing once per
// journalFlush, until the queue is closed.
func (j *journal) writer() {
	defer close(j.done)
	t := time.NewTicker(journalFlush)
	defer t.Stop()
	var buf []byte
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		n, err := j.f.Write(buf)
		j.size += int64(n)
		if err == nil {
			err = j.f.Sync()
		}
		if err != nil {
			j.log.Error("writing the failover journal", "err", err)
		}
		buf = buf[:0]
		if j.size > journalMinSize && j.size > 4*j.live {
			if err := j.compact(); err != nil {
				j.log.Error("compacting the failover journal", "err", err)
			}
		}
		return err
	}
	for {
		select {
		case r, ok := <-j.recs:
			if !ok {
				flush()
				return
			}
			buf = r.appendTo(buf)
			if len(buf) > 1<<20 {
				flush()
			}
		case <-t.C:
			flush()
		case done := <-j.syncs:
			// Everything queued before the request is in the channel.
			for drained := false; !drained; {
				select {
				case r, ok := <-j.recs:
					if !ok {
						drained = true
						break
					}
					buf = r.appendTo(buf)
				default:
					drained = true
				}
			}
			done <- flush()
		}
	}
}

// sync returns once every record added before it is on disk.
func (j *journal) sync() error {
	done := make(chan error, 1)
	j.mu.RLock()
	closed := j.closed
	j.mu.RUnlock()
	if closed {
		return errors.New("the failover journal is closed")
	}
	select {
	case j.syncs <- done:
		return <-done
	case <-j.done:
		return errors.New("the failover journal is closed")
	}
}

// close writes what is queued and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.recs)
	j.mu.Unlock()
	<-j.done
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("closing failover journal: %w", err)
	}
	return nil
}
