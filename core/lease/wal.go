package lease

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The write-ahead log. A lease write is acknowledged once its record is in
// the log and the log is fdatasync'd: one sequential write and one flush
// for a whole group of writers, where a bbolt commit costs a rewrite of
// every B+tree page the group touches and two flushes. The records reach
// the bbolt file later, many groups at once, at a checkpoint; only then is
// their log file given up.
//
// A log file is named after the database with ".wal.N": N is its sequence
// number, which also tags every record written to it. Files are zero-filled
// to walPrealloc bytes when made and reused after their checkpoint (renamed
// to the next number), so that a flush never has to record a new file size
// or newly allocated blocks. The database's meta bucket holds the number of
// the last file whose records bbolt holds (walCheckpointKey): files up to it
// are spares, files after it are replayed into bbolt at Open.
//
// A record is a 12-byte header — payload length, the file's sequence number
// (low 32 bits), CRC-32C of those 4 number bytes and the payload — and a
// payload: one kind byte, the 17-byte prefix key and, for a put, the lease
// record. Reading a file stops at the first record whose length, number or
// checksum does not fit: zeros, the older records of a reused file, or a
// record torn by a crash (never acknowledged: its group's flush had not
// returned).
const (
	walPrealloc  = 8 << 20
	walHeaderLen = 12
	walPut       = 1
	walDelete    = 2
	walMaxRecord = 1 << 20 // a lease record is far smaller; more is garbage
	walSpares    = 2       // checkpointed files kept for reuse
)

var (
	walCheckpointKey = []byte("wal-checkpoint")
	castagnoli       = crc32.MakeTable(crc32.Castagnoli)
)

// walFile is one open log file and the offset its next record goes to.
type walFile struct {
	f    *os.File
	path string
	seq  uint64
	off  int64
}

// walPath is the name of log file seq of database db.
func walPath(db string, seq uint64) string { return db + ".wal." + strconv.FormatUint(seq, 10) }

// walFiles lists the sequence numbers of db's log files, ascending.
func walFiles(db string) ([]uint64, error) {
	names, err := filepath.Glob(db + ".wal.*")
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, n := range names {
		seq, err := strconv.ParseUint(strings.TrimPrefix(n, db+".wal."), 10, 64)
		if err != nil {
			continue // not ours
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// walRecordLen is the length of o's record.
func walRecordLen(o *op) int {
	n := walHeaderLen + 1 + prefixKeyLen
	if !o.del {
		n += len(o.val)
	}
	return n
}

// appendWALRecord appends o's record, tagged with file number seq.
func appendWALRecord(buf []byte, seq uint32, o *op) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(walRecordLen(o)-walHeaderLen))
	buf = binary.LittleEndian.AppendUint32(buf, seq)
	buf = append(buf, 0, 0, 0, 0) // checksum, below
	if o.del {
		buf = append(buf, walDelete)
	} else {
		buf = append(buf, walPut)
	}
	buf = append(buf, o.key[:]...)
	if !o.del {
		buf = append(buf, o.val...)
	}
	sum := crc32.Update(crc32.Checksum(buf[start+4:start+8], castagnoli), castagnoli, buf[start+walHeaderLen:])
	binary.LittleEndian.PutUint32(buf[start+8:], sum)
	return buf
}

// readWAL returns the writes recorded in log file seq, up to the first
// record that does not fit. A put's val aliases the file's bytes.
func readWAL(path string, seq uint64) ([]op, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ops []op
	for len(data) >= walHeaderLen {
		n := binary.LittleEndian.Uint32(data)
		if n < 1+prefixKeyLen || n > walMaxRecord || int(n) > len(data)-walHeaderLen ||
			binary.LittleEndian.Uint32(data[4:]) != uint32(seq) {
			break
		}
		payload := data[walHeaderLen : walHeaderLen+n]
		sum := crc32.Update(crc32.Checksum(data[4:8], castagnoli), castagnoli, payload)
		if sum != binary.LittleEndian.Uint32(data[8:]) {
			break
		}
		var o op
		copy(o.key[:], payload[1:1+prefixKeyLen])
		switch payload[0] {
		case walPut:
			o.val = payload[1+prefixKeyLen:]
		case walDelete:
			o.del = true
		default:
			return ops, fmt.Errorf("%s: record of unknown kind %d", path, payload[0])
		}
		ops = append(ops, o)
		data = data[walHeaderLen+n:]
	}
	return ops, nil
}

// newWALFile makes log file seq of db: a spare renamed, when there is one,
// or a new zero-filled file. Either way the directory is synced, so that
// records acknowledged in the file are found under its name after a crash.
func newWALFile(db string, seq uint64, spare string, sync bool) (*walFile, error) {
	path := walPath(db, seq)
	if spare != "" {
		if err := os.Rename(spare, path); err != nil {
			return nil, fmt.Errorf("reusing lease log %s: %w", spare, err)
		}
	} else if err := zeroFill(path, sync); err != nil {
		return nil, fmt.Errorf("making lease log %s: %w", path, err)
	}
	if sync {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening lease log: %w", err)
	}
	return &walFile{f: f, path: path, seq: seq}, nil
}

func zeroFill(path string, sync bool) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := 0; off < walPrealloc; off += len(zeros) {
		if _, err := f.Write(zeros); err != nil {
			f.Close()
			return err
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// write appends buf at the file's offset and flushes it.
func (w *walFile) write(buf []byte, sync bool) error {
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		return fmt.Errorf("writing lease log %s: %w", w.path, err)
	}
	if sync {
		if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
			return fmt.Errorf("flushing lease log %s: %w", w.path, err)
		}
	}
	w.off += int64(len(buf))
	return nil
}
