package store_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// snapshotBytes returns a snapshot of s.
func snapshotBytes(t *testing.T, s *store.Store) []byte {
	t.Helper()
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func populated(t *testing.T) *store.Store {
	t.Helper()
	s := openStore(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}))
	for i := range 50 {
		a.apply(upsert("t", map[string]any{"id": string(rune('a'+i%26)) + string(rune('a'+i/26)), "n": i}))
	}
	return s
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	good := snapshotBytes(t, populated(t))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not a snapshot", []byte("hello, world, this is not a snapshot at all......")},
		{"truncated header", good[:20]},
		{"truncated in pairs", good[:len(good)/2]},
		{"truncated trailer", good[:len(good)-3]},
		{"flipped byte in the middle", flip(len(good) / 2)},
		{"flipped byte in the header hash", flip(30)},
		{"flipped checksum", flip(len(good) - 1)},
		{"trailing data", append(bytes.Clone(good), 0)},
		{"unknown format", flip(11)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			defer func() { s.Close() }()
			err := s.Restore(bytes.NewReader(tt.data))
			if !errors.Is(err, store.ErrCorruptSnapshot) {
				t.Fatalf("Restore = %v, want ErrCorruptSnapshot", err)
			}
			if !s.Dirty() {
				t.Fatal("Dirty() = false after a failed restore")
			}
			if s.AppliedIndex() != 0 {
				t.Fatalf("applied index %d after a failed restore", s.AppliedIndex())
			}
			if _, err := s.Apply(nil); !errors.Is(err, store.ErrDirty) {
				t.Fatalf("Apply on a dirty store = %v", err)
			}
			if _, err := s.Snapshot(); !errors.Is(err, store.ErrDirty) {
				t.Fatalf("Snapshot on a dirty store = %v", err)
			}
			// Still dirty after a restart; a good snapshot cleans it.
			s.Close()
			s = openStore(t, dir)
			if !s.Dirty() {
				t.Fatal("Dirty() = false after reopening")
			}
			if err := s.Restore(bytes.NewReader(good)); err != nil {
				t.Fatal(err)
			}
			if s.Dirty() || s.AppliedIndex() != 51 {
				t.Fatalf("after a good restore: dirty=%t applied=%d", s.Dirty(), s.AppliedIndex())
			}
		})
	}
}

// failingReader fails after n bytes, like a dropped connection.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestRestoreReplacesState(t *testing.T) {
	src := populated(t)
	good := snapshotBytes(t, src)

	dst := openStore(t, t.TempDir())
	defer dst.Close()
	a := newApplier(t, dst)
	a.apply(createTable(tandem.TableSchema{Name: "other"}))
	for range 60 {
		a.apply(upsert("other", map[string]any{"id": "x"}))
	}
	if err := dst.Restore(&failingReader{r: bytes.NewReader(good), n: 100}); err == nil {
		t.Fatal("Restore from a failing reader succeeded")
	}
	if !dst.Dirty() {
		t.Fatal("not dirty after an interrupted restore")
	}
	if err := dst.Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if got, want := store.Dump(dst), store.Dump(src); got != want {
		t.Fatalf("restored state differs:\n%s\nwant\n%s", got, want)
	}
	i1, h1 := dst.State()
	i2, h2 := src.State()
	if i1 != i2 || h1 != h2 {
		t.Fatal("State() differs after restore")
	}
	if _, err := dst.Table("other"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("table from before the restore survived: %v", err)
	}
	q := &tandem.Query{Table: "t", Filters: []tandem.Filter{{Attr: "n", Op: "ge", Values: []string{"40"}}}, Sort: "n", Desc: true}
	r1, err1 := dst.Query(q)
	r2, err2 := src.Query(q)
	if err1 != nil || err2 != nil || joinRecords(r1.Records) != joinRecords(r2.Records) || len(r1.Records) != 10 {
		t.Fatalf("queries differ: %v %v", err1, err2)
	}
}

func TestSnapshotIsPointInTime(t *testing.T) {
	s := populated(t)
	before := store.Dump(s)
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if sn.Index() != 51 {
		t.Fatalf("Index() = %d", sn.Index())
	}
	a := newApplier(t, s)
	a.apply(upsert("t", map[string]any{"id": "late", "n": 1}))
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	fresh := openStore(t, t.TempDir())
	defer fresh.Close()
	if err := fresh.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if got := store.Dump(fresh); got != before {
		t.Fatalf("snapshot includes later writes:\n%s", got)
	}
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestCloseReleasesSnapshots(t *testing.T) {
	s := openStore(t, t.TempDir())
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with an open snapshot: %v", err)
	}
	if err := sn.Close(); err != nil {
		t.Fatalf("Snapshot.Close after Close: %v", err)
	}
	if _, err := sn.WriteTo(io.Discard); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
}
