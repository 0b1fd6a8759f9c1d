package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// Snapshot format (all integers big-endian unless marked uvarint):
//
//	header   "TANDEMSS" | uint32 format (1) | uint64 applied index | 32-byte ledger hash
//	pairs    uvarint key length (> 0) | key | uvarint value length | value, in key order
//	end      uvarint 0
//	trailer  uint64 number of pairs | uint32 CRC-32C of every byte before the trailer
//
// The pairs are every key of the store but the restore marker, the applied
// state key included.
const (
	snapMagic     = "TANDEMSS"
	snapFormat    = 1
	snapHeaderLen = len(snapMagic) + 4 + 8 + 32
	maxSnapKey    = 1 << 20
	maxSnapValue  = 1 << 30
	restoreBatch  = 4 << 20 // bytes per restore batch
)

// Snapshot is a point-in-time view of the store that can be streamed to a
// writer. It does not block Apply. Close it when done.
type Snapshot struct {
	s     *Store
	snap  *pebble.Snapshot
	state appliedState
}

// Snapshot captures the current state. It is cheap; call it between Applies.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	if s.dirty.Load() {
		return nil, ErrDirty
	}
	sn := &Snapshot{s: s, snap: s.db.NewSnapshot(), state: *s.state.Load()}
	s.snapMu.Lock()
	s.snaps[sn] = struct{}{}
	s.snapMu.Unlock()
	return sn, nil
}

// Index returns the applied index the snapshot was taken at.
func (sn *Snapshot) Index() uint64 { return sn.state.index }

// Close releases the snapshot. It is safe to call twice, and after the
// store's Close (which releases every snapshot).
func (sn *Snapshot) Close() error {
	sn.s.snapMu.Lock()
	defer sn.s.snapMu.Unlock()
	if _, ok := sn.s.snaps[sn]; !ok {
		return nil
	}
	delete(sn.s.snaps, sn)
	return sn.snap.Close()
}

// WriteTo first makes everything applied so far durable, then streams the
// snapshot to w. It may run concurrently with Apply.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	sn.s.mu.RLock()
	defer sn.s.mu.RUnlock()
	if sn.s.closed {
		return 0, closedError()
	}
	sn.s.snapMu.Lock()
	_, open := sn.s.snaps[sn]
	sn.s.snapMu.Unlock()
	if !open {
		return 0, errors.New("store: snapshot is closed")
	}
	if err := sn.s.syncLocked(); err != nil {
		return 0, err
	}
	cw := &countWriter{w: bufio.NewWriterSize(w, 256<<10), crc: crc32.New(crcTable())}
	hdr := make([]byte, 0, snapHeaderLen)
	hdr = append(hdr, snapMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, snapFormat)
	hdr = binary.BigEndian.AppendUint64(hdr, sn.state.index)
	hdr = append(hdr, sn.state.hash[:]...)
	cw.write(hdr)

	it, err := sn.snap.NewIter(nil)
	if err != nil {
		return cw.n, err
	}
	var pairs uint64
	var lenBuf [binary.MaxVarintLen64]byte
	for valid := it.First(); valid && cw.err == nil; valid = it.Next() {
		k := it.Key()
		if string(k) == keyRestoring {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return cw.n, err
		}
		cw.write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		cw.write(k)
		cw.write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(v)))])
		cw.write(v)
		pairs++
	}
	if err := it.Close(); err != nil {
		return cw.n, err
	}
	cw.write([]byte{0})
	trailer := binary.BigEndian.AppendUint64(nil, pairs)
	trailer = binary.BigEndian.AppendUint32(trailer, cw.crc.Sum32())
	cw.write(trailer)
	if cw.err == nil {
		cw.err = cw.w.Flush()
	}
	return cw.n, cw.err
}

// countWriter writes to a buffered writer, counting bytes and keeping a
// running CRC, and remembers the first error.
type countWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	n   int64
	err error
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	c.crc.Write(p)
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func crcTable() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// Restore replaces the whole state by the snapshot read from r. The restore
// marker is set first and cleared last, so an interrupted or failed Restore
// leaves Dirty() true (also across restarts) and the store must be restored
// again before use. On success the state is synced to disk. A truncated or
// corrupt snapshot fails with an error wrapping ErrCorruptSnapshot.
// Readers wait until it is done: none sees the state half replaced.
// Snapshots taken before are unaffected.
func (s *Store) Restore(r io.Reader) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.restoring.Lock()
	defer s.restoring.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return closedError()
	}
	s.recs.clear()
	// Mark, then wipe everything but the marker, in one synced batch.
	b := s.db.NewBatch()
	marker := []byte(keyRestoring)
	err := errors.Join(
		b.Set(marker, nil, nil),
		b.DeleteRange([]byte{0}, marker, nil),
		b.DeleteRange(append(marker, 0), []byte{0xff}, nil),
	)
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err == nil {
		err = s.db.Flush() // no WAL: flushing is what makes the marker durable
	}
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("store: restore: start: %w", err)
	}
	s.dirty.Store(true)
	s.state.Store(&appliedState{})
	s.schemas.Store(&schemaMap{})
	s.sec.Store(emptySec())
	s.nodes.Store(new([]tandem.NodeInfo))
	s.bumpContracts(math.MaxUint64) // until load, at the restore's end

	if err := s.restoreStream(r); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := s.load(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	s.log.Info("store: restored snapshot", "applied_index", s.AppliedIndex())
	return nil
}

// restoreStream writes the pairs of the snapshot in r and, once the trailer
// checks out, the applied state and the removal of the marker.
func (s *Store) restoreStream(r io.Reader) error {
	cr := &crcReader{r: bufio.NewReaderSize(r, 256<<10), crc: crc32.New(crcTable())}
	hdr := make([]byte, snapHeaderLen)
	if _, err := io.ReadFull(cr, hdr); err != nil {
		return corrupt("header: %v", err)
	}
	if string(hdr[:len(snapMagic)]) != snapMagic {
		return corrupt("not a Tandem snapshot")
	}
	if f := binary.BigEndian.Uint32(hdr[len(snapMagic):]); f != snapFormat {
		return corrupt("unknown format %d", f)
	}
	want := appliedState{index: binary.BigEndian.Uint64(hdr[len(snapMagic)+4:])}
	copy(want.hash[:], hdr[len(snapMagic)+12:])

	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	var (
		pairs   uint64
		prev    []byte
		applied []byte
		key     bytes.Buffer
		val     bytes.Buffer
	)
	for {
		kl, err := binary.ReadUvarint(cr)
		if err != nil {
			return corrupt("pair %d: %v", pairs, noEOF(err))
		}
		if kl == 0 {
			break
		}
		var vl uint64
		err = readChunk(cr, &key, kl, maxSnapKey)
		if err == nil {
			vl, err = binary.ReadUvarint(cr)
		}
		if err == nil {
			err = readChunk(cr, &val, vl, maxSnapValue)
		}
		if err != nil {
			return corrupt("pair %d: %v", pairs, noEOF(err))
		}
		k := key.Bytes()
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return corrupt("pair %d: keys out of order", pairs)
		}
		prev = append(prev[:0], k...)
		pairs++
		switch string(k) {
		case keyRestoring:
			return corrupt("pair %d: restore marker in snapshot", pairs)
		case keyApplied:
			applied = bytes.Clone(val.Bytes()) // written last, with the marker's removal
			continue
		}
		if err := b.Set(k, val.Bytes(), nil); err != nil {
			return err
		}
		if b.Len() >= restoreBatch {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			_ = b.Close()
			b = s.db.NewBatch()
		}
	}
	sum := cr.crc.Sum32()
	trailer := make([]byte, 12)
	if _, err := io.ReadFull(cr.r, trailer); err != nil {
		return corrupt("trailer: %v", noEOF(err))
	}
	if n := binary.BigEndian.Uint64(trailer); n != pairs {
		return corrupt("trailer: %d pairs, read %d", n, pairs)
	}
	if c := binary.BigEndian.Uint32(trailer[8:]); c != sum {
		return corrupt("checksum mismatch")
	}
	if _, err := cr.r.ReadByte(); err != io.EOF {
		return corrupt("data after the trailer")
	}
	if want.index != 0 || applied != nil {
		st, err := decodeApplied(applied)
		if err != nil || *st != want {
			return corrupt("applied state does not match the header")
		}
		if err := b.Set([]byte(keyApplied), applied, nil); err != nil {
			return err
		}
	}
	if err := b.Delete([]byte(keyRestoring), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	return s.db.Flush()
}

// readChunk reads n bytes into buf (reset first), growing it only as data
// arrives so that a corrupt length cannot force a huge allocation.
func readChunk(r io.Reader, buf *bytes.Buffer, n, max uint64) error {
	if n > max {
		return fmt.Errorf("length %d over the limit %d", n, max)
	}
	buf.Reset()
	_, err := io.CopyN(buf, r, int64(n))
	return err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// crcReader reads from r keeping a running CRC of what it returned.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	one [1]byte
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.one[0] = b
		c.crc.Write(c.one[:])
	}
	return b, err
}
