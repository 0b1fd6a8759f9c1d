package consensus

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
)

// segmentSize is the size of one raft-wal segment file. Smaller than
// raft-wal's 64 MiB default so that zeroing a new one (below) is quick:
// 10–20 ms of writing here (`dd if=/dev/zero bs=1M count=16 oflag=dsync`,
// the same writes and syncs), at a node's first start or in the
// background.
const segmentSize = 16 << 20

// spacing is the pause between the MiBs of a spare segment being zeroed in
// the background: 16 MiB then take about 0.2 s, while at full write load
// a segment lasts several seconds.
const spacing = 10 * time.Millisecond

// Names of the spare segment file in the WAL folder. raft-wal only looks at
// files ending in ".wal", so it never sees them.
const (
	spareName    = "next-segment.zeroed"
	spareTmpName = spareName + ".tmp"
)

// zeroedSegments is raft-wal's file system with one change: a new segment
// file is one whose bytes have been written (zeros) and synced, not one
// preallocated with fallocate.
//
// Why: on ext4, a write into fallocated space converts an "unwritten"
// extent to a written one, a metadata change that the fsync after it must
// commit to the journal. BenchmarkSegmentSync, 8 KiB appends (a batch of
// records) each followed by fsync: 245–266 µs of wall time and 122–136 µs
// of CPU into a fallocated file, 166 µs and 89–95 µs into a zeroed one
// (512 B appends gain nothing: most land in a block already converted).
// Every Raft round waits for two of these fsyncs in a row (the leader's,
// then a follower's), so this is write latency and CPU on every node.
//
// Zeroing 16 MiB must not stall the log: raft-wal creates the next segment
// while writers wait. So the next segment is prepared in the background,
// as a spare file, once the current one is half full, and Create renames
// it into place. Without a spare (the node's first segment, or writes
// outrunning the preparation) Create zeroes the file itself if there is no
// segment yet (a node's first start, before it takes writes), and
// otherwise falls back to raft-wal's fallocate, which is only slower.
type zeroedSegments struct {
	*walfs.FS
	dir  string
	size uint64 // of the segments raft-wal creates: the spare's size
	log  *slog.Logger

	mu        sync.Mutex
	spareSize uint64 // size of the complete spare file; 0: none (or being made)
	preparing bool
	closed    bool
	wg        sync.WaitGroup
}

// walCloser closes the WAL, then waits for its file system's background
// work.
type walCloser struct {
	w    *raftwal.WAL
	segs *zeroedSegments
}

func (c walCloser) Close() error {
	err := c.w.Close()
	c.segs.Close()
	return err
}

// newZeroedSegments returns the file system for the WAL in dir. It keeps a
// complete spare left by an earlier run and removes an incomplete one.
func newZeroedSegments(dir string, size uint64, log *slog.Logger) *zeroedSegments {
	z := &zeroedSegments{FS: walfs.New(), dir: dir, size: size, log: log}
	_ = os.Remove(filepath.Join(dir, spareTmpName))
	if fi, err := os.Stat(filepath.Join(dir, spareName)); err == nil && fi.Mode().IsRegular() {
		z.spareSize = uint64(fi.Size())
	}
	return z
}

// Close stops a spare being prepared and waits for it; later preparations
// do not start.
func (z *zeroedSegments) Close() {
	z.mu.Lock()
	z.closed = true
	z.mu.Unlock()
	z.wg.Wait()
}

// Create implements types.VFS.
func (z *zeroedSegments) Create(dir, name string, size uint64) (types.WritableFile, error) {
	path := filepath.Join(dir, name)
	if _, err := os.Lstat(path); err == nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	z.mu.Lock()
	useSpare := dir == z.dir && size > 0 && z.spareSize == size
	if useSpare {
		z.spareSize = 0
	}
	z.mu.Unlock()
	if useSpare {
		if err := os.Rename(filepath.Join(dir, spareName), path); err != nil {
			z.log.Warn("raft log: cannot use the zeroed spare segment; preallocating instead", "err", err)
		} else if f, err := os.OpenFile(path, os.O_RDWR, 0o644); err != nil {
			return nil, err
		} else {
			return z.watch(&newFile{File: f, dir: dir}, size), nil
		}
	}
	if size > 0 && size <= 1<<30 && dir == z.dir && z.noSegments() {
		// The first segment of a new log: zeroing it here costs the
		// node's start 10–20 ms, before any write.
		if err := zeroFile(path, size, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0, nil); err != nil {
			_ = os.Remove(path)
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		return z.watch(&newFile{File: f, dir: dir}, size), nil
	}
	f, err := z.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return z.watch(f, size), nil
}

// OpenWriter implements types.VFS: the tail segment after a restart.
func (z *zeroedSegments) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := z.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return z.watch(f, uint64(fi.Size())), nil
}

func (z *zeroedSegments) noSegments() bool {
	names, err := z.FS.ListDir(z.dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if filepath.Ext(n) == ".wal" {
			return false
		}
	}
	return true
}

func (z *zeroedSegments) watch(f types.WritableFile, size uint64) types.WritableFile {
	return &watchedFile{WritableFile: f, z: z, half: int64(size / 2)}
}

// prepare zeroes a spare segment in the background, unless one is ready or
// on its way.
func (z *zeroedSegments) prepare() {
	size := z.size
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.closed || z.preparing || z.spareSize == size || size == 0 || size > 1<<30 {
		return
	}
	z.preparing = true
	z.spareSize = 0 // makeSpare removes a spare of another size first
	z.wg.Add(1)
	go func() {
		defer z.wg.Done()
		err := z.makeSpare(size)
		z.mu.Lock()
		z.preparing = false
		if err == nil {
			z.spareSize = size
		}
		z.mu.Unlock()
		if err != nil && !errors.Is(err, errStopped) {
			z.log.Warn("raft log: cannot prepare the next segment; it will be preallocated", "err", err)
		}
	}()
}

func (z *zeroedSegments) makeSpare(size uint64) error {
	tmp := filepath.Join(z.dir, spareTmpName)
	_ = os.Remove(filepath.Join(z.dir, spareName)) // one of another size
	if err := zeroFile(tmp, size, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, spacing, z.isClosed); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(z.dir, spareName)); err != nil {
		return err
	}
	return syncDir(z.dir)
}

func (z *zeroedSegments) isClosed() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.closed
}

// errStopped ends a background preparation when the log closes.
var errStopped = errors.New("closing")

// zeroFile writes size zero bytes to a file, syncing each MiB, so that no
// large fsync sits in the disk's queue ahead of the log's own. With pause
// set it waits that long between MiBs: a background preparation then
// takes a fraction of the disk, not all of it. It gives up with errStopped
// when stop (if any) says so between MiBs.
func zeroFile(path string, size uint64, flag int, pause time.Duration, stop func() bool) error {
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	for written := uint64(0); written < size; {
		n := min(uint64(chunk), size-written)
		if _, err := f.Write(buf[:n]); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
		written += n
		if pause > 0 && written < size {
			time.Sleep(pause)
		}
		if stop != nil && written < size && stop() {
			_ = f.Close()
			return errStopped
		}
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// newFile is a segment file that was just renamed or created: its folder
// is synced at its first Sync, as raft-wal's own files do, so that a crash
// after the first commit cannot forget the file.
type newFile struct {
	*os.File
	dir    string
	synced bool
}

func (f *newFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	if !f.synced {
		if err := syncDir(f.dir); err != nil {
			return err
		}
		f.synced = true
	}
	return nil
}

// watchedFile starts the next segment's preparation when writes reach the
// middle of this one.
type watchedFile struct {
	types.WritableFile
	z         *zeroedSegments
	half      int64
	triggered bool
}

func (f *watchedFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.WritableFile.WriteAt(p, off)
	if !f.triggered && off+int64(n) >= f.half {
		f.triggered = true
		f.z.prepare()
	}
	return n, err
}

var _ types.VFS = (*zeroedSegments)(nil)
