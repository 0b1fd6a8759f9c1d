package store_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    store.Options
		wantErr bool
	}{
		{"no dir", store.Options{}, true},
		{"negative cache", store.Options{Dir: t.TempDir(), CacheSize: -1}, true},
		{"defaults", store.Options{Dir: t.TempDir()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open: %v, want error %t", err, tt.wantErr)
			}
			if s != nil {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	s := openStore(t, t.TempDir())
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	_, err := s.Get("t", "x")
	if tandem.ErrorCode(err) != tandem.CodeUnavailable || !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := s.Query(&tandem.Query{Table: "t"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Query after Close: %v", err)
	}
	if _, err := s.Apply([]store.LogEntry{a.entry()}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if s.Nodes() != nil {
		t.Fatal("Nodes after Close")
	}
}

func TestReads(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(
		createTable(tandem.TableSchema{Name: "b", PrimaryKey: "n", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}}),
		createTable(tandem.TableSchema{Name: "a", Attributes: map[string]tandem.AttrType{"x": tandem.TypeString}, Indexes: []string{"x"}}),
		upsert("b", map[string]any{"n": -5, "s": "<&>"}),
	)
	tests := []struct {
		table, key string
		want       string
		code       tandem.Code
	}{
		{"b", "-5", `v1 {"_version":1,"n":-5,"s":"<&>"}`, ""},
		{"b", "5", "", tandem.CodeNotFound},
		{"b", "05", "", tandem.CodeInvalid},
		{"b", "x", "", tandem.CodeInvalid},
		{"a", "", "", tandem.CodeInvalid},
		{"zz", "1", "", tandem.CodeNotFound},
	}
	for _, tt := range tests {
		rd, err := s.Get(tt.table, tt.key)
		if c := tandem.ErrorCode(err); c != tt.code {
			t.Errorf("Get(%q, %q): code %q, want %q (%v)", tt.table, tt.key, c, tt.code, err)
			continue
		}
		if err == nil {
			if got := mustGet(t, s, tt.table, tt.key); got != tt.want || rd.Version != 1 {
				t.Errorf("Get(%q, %q) = %s, want %s", tt.table, tt.key, got, tt.want)
			}
		}
	}

	tables := s.Tables()
	if len(tables) != 2 || tables[0].Name != "a" || tables[1].Name != "b" {
		t.Fatalf("Tables() = %+v", tables)
	}
	sc, err := s.Table("a")
	if err != nil {
		t.Fatal(err)
	}
	sc.Attributes["x"] = tandem.TypeInt
	sc.Indexes[0] = "y"
	if sc2, _ := s.Table("a"); sc2.Attributes["x"] != tandem.TypeString || sc2.Indexes[0] != "x" {
		t.Fatal("Table returned the cached schema, not a copy")
	}
	if _, err := s.Table("zz"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("Table(zz): %v", err)
	}
}

// TestConcurrentReads runs readers against a store being written, for the
// race detector.
func TestConcurrentReads(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Get("t", "k1"); err != nil && tandem.ErrorCode(err) != tandem.CodeNotFound {
					t.Error(err)
				}
				if _, err := s.Query(&tandem.Query{Table: "t", Sort: "n", Desc: true, Limit: 5}); err != nil {
					t.Error(err)
				}
				s.State()
				s.Tables()
			}
		}()
	}
	for i := range 200 {
		a.apply(upsert("t", map[string]any{"id": "k" + string(rune('0'+i%10)), "n": i}))
		if i%50 == 0 {
			sn, err := s.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sn.Close()
				if _, err := sn.WriteTo(discard{}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	close(stop)
	wg.Wait()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestNewerEntryFormatStops: an entry of a format this binary does not
// know is not skipped like garbage (the node would silently diverge from
// nodes that apply it): Apply refuses the whole batch and applies nothing.
func TestNewerEntryFormatStops(t *testing.T) {
	s := openStore(t, t.TempDir())
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	before, hash := s.State()
	good := a.entry()
	good.Index = before + 1
	newer := store.LogEntry{Index: before + 2, Data: []byte{99, 0, 0}}
	if _, err := s.Apply([]store.LogEntry{good, newer}); !errors.Is(err, tandem.ErrNewerEntryFormat) {
		t.Fatalf("Apply of a newer format: %v", err)
	}
	if idx, h := s.State(); idx != before || h != hash {
		t.Fatalf("after the refused batch: index %d hash %x; want %d %x (nothing applied)", idx, h, before, hash)
	}
	// Garbage of a known format is still skipped, deterministically.
	if _, err := s.Apply([]store.LogEntry{{Index: before + 1, Data: []byte{2, 0xff}}}); err != nil {
		t.Fatalf("Apply of an undecodable entry: %v", err)
	}
	if idx, _ := s.State(); idx != before+1 {
		t.Fatalf("undecodable entry: index %d, want %d", idx, before+1)
	}
}
