package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"golang.org/x/sys/unix"
)

const testSegSize = 3<<20 + 4096 // not a whole number of MiB

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// firstHole returns where the first hole (unwritten or unallocated space)
// of the file at path starts; the file's size if it has none.
func firstHole(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		t.Fatalf("SEEK_HOLE %s: %v", path, err)
	}
	return off
}

func requireZeros(t *testing.T, path string, size int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("%s: %d bytes, want %d", filepath.Base(path), len(b), size)
	}
	if i := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("%s: byte %d is not zero", filepath.Base(path), i)
	}
}

// The first segment of a new log is written (zeros), not preallocated: a
// write into it does not convert extents at every fsync.
func TestZeroedSegmentsFirstIsWritten(t *testing.T) {
	dir := t.TempDir()
	// Control: can this file system tell preallocated space from written?
	ctl, err := walfs.New().Create(dir, "control", testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	ctl.Close()
	if firstHole(t, filepath.Join(dir, "control")) == testSegSize {
		t.Skip("this file system reports preallocated space as data: zeroed and preallocated files look the same")
	}
	os.Remove(filepath.Join(dir, "control"))

	z := newZeroedSegments(dir, testSegSize, quietLogger())
	defer z.Close()
	f, err := z.Create(dir, "00000000000000000001-0000000000000000.wal", testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := filepath.Join(dir, "00000000000000000001-0000000000000000.wal")
	if h := firstHole(t, path); h != testSegSize {
		t.Fatalf("first segment has a hole (preallocated space) at %d; want it written to %d", h, testSegSize)
	}
	requireZeros(t, path, testSegSize)
}

func TestZeroedSegmentsCreateExisting(t *testing.T) {
	dir := t.TempDir()
	z := newZeroedSegments(dir, testSegSize, quietLogger())
	defer z.Close()
	name := "00000000000000000001-0000000000000000.wal"
	f, err := z.Create(dir, name, testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := z.Create(dir, name, testSegSize); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create of %s: %v, want fs.ErrExist", name, err)
	}
}

// waitSpare waits until z has a complete spare of size bytes: the file is
// in place and z has recorded it (it does so after syncing the folder, a
// moment after the rename, and Create consults that record, not the file).
func waitSpare(t *testing.T, z *zeroedSegments, dir string, size int64) os.FileInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		z.mu.Lock()
		ready := z.spareSize == uint64(size)
		z.mu.Unlock()
		fi, err := os.Stat(filepath.Join(dir, spareName))
		if ready && err == nil && fi.Size() == size {
			return fi
		}
		if time.Now().After(deadline) {
			t.Fatalf("no spare segment of %d bytes after 10 s (recorded: %v, stat: %v)", size, ready, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Writes past the middle of a segment prepare the next one in the
// background; the next Create takes it (the same file, renamed).
func TestZeroedSegmentsSpareBecomesNextSegment(t *testing.T) {
	dir := t.TempDir()
	z := newZeroedSegments(dir, testSegSize, quietLogger())
	defer z.Close()
	first, err := z.Create(dir, "00000000000000000001-0000000000000000.wal", testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.WriteAt([]byte("entry"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a spare exists before the segment is half full (stat: %v)", err)
	}
	if _, err := first.WriteAt([]byte("entry"), testSegSize/2); err != nil {
		t.Fatal(err)
	}
	spare := waitSpare(t, z, dir, testSegSize)

	name := "00000000000000000100-0000000000000001.wal"
	second, err := z.Create(dir, name, testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, spare) {
		t.Fatal("the second segment is not the prepared spare")
	}
	if _, err := os.Stat(filepath.Join(dir, spareName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the spare is still there after it was used (stat: %v)", err)
	}
	requireZeros(t, filepath.Join(dir, name), testSegSize)
	// The file is usable as a segment: written, synced, read back.
	if _, err := second.WriteAt([]byte("hello"), 10); err != nil {
		t.Fatal(err)
	}
	if err := second.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := second.ReadAt(got, 10); err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}

	// Without a spare ready (it was just used) and with segments present,
	// Create falls back to preallocation rather than waiting.
	third, err := z.Create(dir, "00000000000000000200-0000000000000002.wal", testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
}

// A restarted node keeps a complete spare and removes a half-written one.
func TestZeroedSegmentsRestart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001-0000000000000000.wal"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := zeroFile(filepath.Join(dir, spareName), testSegSize, os.O_CREATE|os.O_WRONLY, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spareTmpName), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	spare, err := os.Stat(filepath.Join(dir, spareName))
	if err != nil {
		t.Fatal(err)
	}
	z := newZeroedSegments(dir, testSegSize, quietLogger())
	defer z.Close()
	if _, err := os.Stat(filepath.Join(dir, spareTmpName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the incomplete spare was not removed (stat: %v)", err)
	}
	name := "00000000000000000100-0000000000000001.wal"
	f, err := z.Create(dir, name, testSegSize)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, spare) {
		t.Fatal("the restarted node did not use the complete spare")
	}
}

// raft-wal over these files: entries written across many segment
// rotations (most into prepared spares) all read back after a reopen.
func TestWALOverZeroedSegments(t *testing.T) {
	dir := t.TempDir()
	const segSize = 256 << 10
	open := func() (*raftwal.WAL, *zeroedSegments) {
		z := newZeroedSegments(dir, segSize, quietLogger())
		w, err := raftwal.Open(dir, raftwal.WithSegmentSize(segSize), raftwal.WithSegmentFiler(segment.NewFiler(dir, z)))
		if err != nil {
			t.Fatal(err)
		}
		return w, z
	}
	w, z := open()
	const n = 3000
	data := func(i int) []byte { return []byte(fmt.Sprintf("entry %d %s", i, bytes.Repeat([]byte{'v'}, 300))) }
	for i := 1; i <= n; i += 10 {
		batch := make([]*raft.Log, 0, 10)
		for j := i; j < i+10; j++ {
			batch = append(batch, &raft.Log{Index: uint64(j), Term: 1, Data: data(j)})
		}
		if err := w.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	z.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 4 {
		t.Fatalf("%d segment files; the test wants several rotations", len(segs))
	}

	w, z = open()
	defer z.Close()
	defer w.Close()
	last, err := w.LastIndex()
	if err != nil || last != n {
		t.Fatalf("last index %d (%v), want %d", last, err, n)
	}
	for i := 1; i <= n; i++ {
		var l raft.Log
		if err := w.GetLog(uint64(i), &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !bytes.Equal(l.Data, data(i)) {
			t.Fatalf("entry %d reads back as %q", i, l.Data)
		}
	}
	// And the log goes on after the reopen.
	if err := w.StoreLog(&raft.Log{Index: n + 1, Term: 1, Data: data(n + 1)}); err != nil {
		t.Fatal(err)
	}
}

// The tail segment reopened after a restart may be of another size (an
// older release's 64 MiB): its writes still prepare a spare of the size
// raft-wal now asks for.
func TestZeroedSegmentsReopenedTailPreparesSpare(t *testing.T) {
	dir := t.TempDir()
	name := "00000000000000000001-0000000000000000.wal"
	if err := zeroFile(filepath.Join(dir, name), 1<<20, os.O_CREATE|os.O_WRONLY, 0, nil); err != nil {
		t.Fatal(err)
	}
	z := newZeroedSegments(dir, testSegSize, quietLogger())
	defer z.Close()
	f, err := z.OpenWriter(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("entry"), 1<<19); err != nil {
		t.Fatal(err)
	}
	waitSpare(t, z, dir, testSegSize)
}

// BenchmarkSegmentSync measures what a Raft append costs the disk: a write
// (512 B: one small entry; 8 KiB: a batch of ~25 records) and an fsync,
// into a segment preallocated with fallocate (raft-wal's own) or into one
// zeroed ahead of use (zeroedSegments). cpu-ns/op is the process's CPU
// time per append. Small appends gain little: most of them land in a
// block an earlier append already converted.
//
//	go test -run XXX -bench SegmentSync -benchtime 2000x ./consensus
func BenchmarkSegmentSync(b *testing.B) {
	for _, size := range []int{512, 8192} {
		for _, kind := range []string{"preallocated", "zeroed"} {
			b.Run(fmt.Sprintf("%s/%dB", kind, size), func(b *testing.B) {
				benchmarkSegmentSync(b, kind, size)
			})
		}
	}
}

func benchmarkSegmentSync(b *testing.B, kind string, writeSize int) {
	dir := b.TempDir()
	name := "00000000000000000001-0000000000000000.wal"
	size := uint64(b.N+1) * uint64(writeSize)
	var f types.WritableFile
	var err error
	if kind == "zeroed" {
		path := filepath.Join(dir, name)
		if err := zeroFile(path, size, os.O_CREATE|os.O_WRONLY, 0, nil); err != nil {
			b.Fatal(err)
		}
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	} else {
		f, err = walfs.New().Create(dir, name, size)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, writeSize)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i)*int64(writeSize)); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// Closing the log stops a spare being zeroed (it would hold the node's
// shutdown for the whole preparation) and leaves no partial file behind.
func TestZeroedSegmentsCloseStopsPreparation(t *testing.T) {
	dir := t.TempDir()
	// 64 MiB, with a pause after each MiB: at least 630 ms of work.
	z := newZeroedSegments(dir, 64<<20, quietLogger())
	z.prepare()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, spareTmpName)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the preparation did not start")
		}
		time.Sleep(time.Millisecond)
	}
	z.Close()
	for _, name := range []string{spareName, spareTmpName} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after Close (stat: %v)", name, err)
		}
	}
	z.prepare() // after Close: nothing starts
	z.wg.Wait()
	if _, err := os.Stat(filepath.Join(dir, spareTmpName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a preparation started after Close (stat: %v)", err)
	}
}
