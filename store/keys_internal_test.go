package store

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// enc is a value constructor for tests: it appends one encoded value.
type enc func([]byte) []byte

func nul() enc              { return appendNull }
func bo(v bool) enc         { return func(b []byte) []byte { return appendBool(b, v) } }
func in(v int64) enc        { return func(b []byte) []byte { return appendInt(b, v) } }
func fl(v float64) enc      { return func(b []byte) []byte { return appendFloat(b, v) } }
func st(v string) enc       { return func(b []byte) []byte { return appendString(b, v) } }
func tm(sec, ns int64) enc  { return func(b []byte) []byte { return appendTime(b, time.Unix(sec, ns)) } }
func ts(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
func tt(s string) enc       { return func(b []byte) []byte { return appendTime(b, ts(s)) } }

func TestEncodingOrder(t *testing.T) {
	tests := []struct {
		name   string
		values []enc // strictly increasing
	}{
		{"types", []enc{nul(), bo(false), in(math.MinInt64), fl(math.Inf(-1)), tm(-1<<40, 0), st("")}},
		{"bool", []enc{bo(false), bo(true)}},
		{"int", []enc{in(math.MinInt64), in(-1 << 40), in(-256), in(-1), in(0), in(1), in(255), in(256), in(math.MaxInt64)}},
		{"float", []enc{
			fl(math.Inf(-1)), fl(-math.MaxFloat64), fl(-1e10), fl(-1.5), fl(-1), fl(-math.SmallestNonzeroFloat64),
			fl(0), fl(math.SmallestNonzeroFloat64), fl(0.5), fl(1), fl(1e10), fl(math.MaxFloat64), fl(math.Inf(1)),
		}},
		{"time", []enc{
			tt("0001-01-01T00:00:00Z"), tt("1677-01-01T00:00:00Z"), tm(-1, 999999999), tm(0, 0), tm(0, 1),
			tt("2026-01-02T15:04:05Z"), tt("2026-01-02T15:04:05.5Z"), tt("2026-01-02T16:04:05-02:00"), tt("9999-12-31T23:59:59Z"),
		}},
		{"string", []enc{
			st(""), st("\x00"), st("\x00\x00"), st("\x00\x01"), st("\x00\xff"), st("\x01"), st("a"), st("a\x00"),
			st("a\x00b"), st("a\x01"), st("ab"), st("b"), st("\xff"), st("\xff\x00"), st("\xff\xff"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 1; i < len(tt.values); i++ {
				a, b := tt.values[i-1](nil), tt.values[i](nil)
				if bytes.Compare(a, b) >= 0 {
					t.Errorf("value %d (%x) does not sort before value %d (%x)", i-1, a, i, b)
				}
				// A primary key may follow: order must not depend on it.
				if bytes.Compare(append(a, 0xff, 0xff), append(b, 0x00)) >= 0 {
					t.Errorf("value %d + suffix does not sort before value %d + suffix", i-1, i)
				}
			}
		})
	}
}

func TestEncodingEqualities(t *testing.T) {
	tests := []struct {
		name string
		a, b enc
	}{
		{"-0 is 0", fl(math.Copysign(0, -1)), fl(0)},
		{"time zones", tt("2026-01-02T16:04:05+01:00"), tt("2026-01-02T15:04:05Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := tt.a(nil), tt.b(nil); !bytes.Equal(a, b) {
				t.Fatalf("%x != %x", a, b)
			}
		})
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		e    enc
		want any
	}{
		{nul(), nil},
		{bo(true), true},
		{in(-5), int64(-5)},
		{fl(-2.5), -2.5},
		{st("a\x00b\xff"), "a\x00b\xff"},
		{tm(-100, 7), time.Unix(-100, 7).UTC()},
	}
	for _, tt := range tests {
		b := tt.e(nil)
		got, rest, err := decodeValue(append(b, 'x'))
		if err != nil || got != tt.want || string(rest) != "x" {
			t.Errorf("decodeValue(%x) = %v, %q, %v; want %v", b, got, rest, err, tt.want)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {tagInt, 1}, {tagString, 'a'}, {tagString, 0, 2}, {tagTime}} {
		if _, _, err := decodeValue(bad); err == nil {
			t.Errorf("decodeValue(%x) succeeded", bad)
		}
	}
}

func TestPrefixEncoding(t *testing.T) {
	tests := []struct {
		prefix, s string
		want      bool
	}{
		{"ab", "abc", true},
		{"ab", "ab", true},
		{"ab", "a", false},
		{"a\x00", "a", false},
		{"a\x00", "a\x00z", true},
		{"", "anything", true},
		{"b", "ab", false},
	}
	for _, tt := range tests {
		p := appendStringPrefix(nil, tt.prefix)
		if got := bytes.HasPrefix(appendString(nil, tt.s), p); got != tt.want {
			t.Errorf("prefix %q of %q: %v, want %v", tt.prefix, tt.s, got, tt.want)
		}
		if got := strings.HasPrefix(tt.s, tt.prefix); got != tt.want {
			t.Fatalf("bad test case %q %q", tt.prefix, tt.s)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a", "b"},
		{"a\xff", "b"},
		{"a\x00", "a\x01"},
		{"\xff\xff", ""},
	}
	for _, tt := range tests {
		if got := prefixEnd([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzKeyEncoding checks that the encoding preserves order and
// self-delimits for random pairs of ints, floats, strings and times.
func FuzzKeyEncoding(f *testing.F) {
	f.Add(int64(-1), int64(1), -0.5, 0.5, "a\x00", "a", int64(0), uint32(1))
	f.Fuzz(func(t *testing.T, ia, ib int64, fa, fb float64, sa, sb string, sec int64, ns uint32) {
		check := func(kind string, a, b []byte, cmp int) {
			t.Helper()
			if got := sign(bytes.Compare(a, b)); got != cmp {
				t.Fatalf("%s: encodings compare %d, values %d (%x vs %x)", kind, got, cmp, a, b)
			}
			for _, e := range [][]byte{a, b} {
				if n, err := valueLen(append(e, 0xff)); err != nil || n != len(e) {
					t.Fatalf("%s: valueLen(%x) = %d, %v", kind, e, n, err)
				}
			}
			if cmp != 0 {
				// Order survives a primary key suffix.
				if got := sign(bytes.Compare(append(a, 0xff), append(b, 0x00))); got != cmp {
					t.Fatalf("%s: order changes with a suffix", kind)
				}
			}
		}
		check("int", appendInt(nil, ia), appendInt(nil, ib), cmp3(ia < ib, ia > ib))
		if !math.IsNaN(fa) && !math.IsNaN(fb) {
			check("float", appendFloat(nil, fa), appendFloat(nil, fb), cmp3(fa < fb, fa > fb))
		}
		check("string", appendString(nil, sa), appendString(nil, sb), strings.Compare(sa, sb))
		if v, _, err := decodeValue(appendString(nil, sa)); err != nil || v != sa {
			t.Fatalf("string %q decodes as %q, %v", sa, v, err)
		}
		t1 := time.Unix(sec, int64(ns%1e9))
		t2 := time.Unix(ia, int64(ns%7))
		check("time", appendTime(nil, t1), appendTime(nil, t2), t1.Compare(t2))
	})
}

func sign(c int) int { return cmp3(c < 0, c > 0) }

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}
