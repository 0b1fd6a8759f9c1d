package checker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tandemdb/tandem/tests/chaos/checker"
)

// Helpers that build register operations on key "k"; times are in seconds.
func write(proc int, call, ret int64, value string, out checker.Outcome, version uint64) checker.RegisterOp {
	return checker.RegisterOp{Process: proc, Key: "k", Kind: checker.Write, Value: value, Call: call, Return: ret, Outcome: out, Version: version, Index: version}
}

func cas(proc int, call, ret int64, expect uint64, value string, out checker.Outcome, version uint64) checker.RegisterOp {
	return checker.RegisterOp{Process: proc, Key: "k", Kind: checker.CAS, Expect: expect, Value: value, Call: call, Return: ret, Outcome: out, Version: version}
}

func read(proc int, call, ret int64, value string, version uint64) checker.RegisterOp {
	return checker.RegisterOp{Process: proc, Key: "k", Kind: checker.Read, Consistency: checker.Linearizable, Call: call, Return: ret,
		Outcome: checker.Ok, Found: value != "", Value: value, Version: version, Index: version}
}

func TestRegisterModel(t *testing.T) {
	ok, unknown, fail := checker.Ok, checker.Unknown, checker.Fail
	tests := []struct {
		name string
		ops  []checker.RegisterOp
		want porcupine.CheckResult
	}{
		{"empty key reads absent", []checker.RegisterOp{read(0, 0, 1, "", 0)}, porcupine.Ok},
		{"read after write", []checker.RegisterOp{write(0, 0, 1, "a", ok, 5), read(1, 2, 3, "a", 5)}, porcupine.Ok},
		{"stale read", []checker.RegisterOp{write(0, 0, 1, "a", ok, 5), read(1, 2, 3, "", 0)}, porcupine.Illegal},
		{"stale read of an older value", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 3, "b", ok, 7), read(1, 4, 5, "a", 5)}, porcupine.Illegal},
		{"concurrent read may see either", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 6, "b", ok, 7), read(1, 3, 4, "a", 5), read(2, 3, 5, "b", 7)}, porcupine.Ok},
		{"reads that disagree on order", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 9, "b", ok, 7), read(1, 3, 4, "b", 7), read(2, 5, 6, "a", 5)}, porcupine.Illegal},
		{"read with the wrong version", []checker.RegisterOp{write(0, 0, 1, "a", ok, 5), read(1, 2, 3, "a", 6)}, porcupine.Illegal},
		{"unknown write seen later", []checker.RegisterOp{write(0, 0, 1, "a", unknown, 0), read(1, 5, 6, "a", 9), read(1, 7, 8, "a", 9)}, porcupine.Ok},
		{"unknown write never seen", []checker.RegisterOp{write(0, 0, 1, "a", unknown, 0), read(1, 5, 6, "", 0)}, porcupine.Ok},
		{"unknown write seen with two versions", []checker.RegisterOp{write(0, 0, 1, "a", unknown, 0), read(1, 5, 6, "a", 9), read(1, 7, 8, "a", 10)}, porcupine.Illegal},
		{"read of a value before its write was called", []checker.RegisterOp{read(1, 0, 1, "a", 5), write(0, 2, 3, "a", ok, 5)}, porcupine.Illegal},
		{"two writes in one log entry share a version", []checker.RegisterOp{
			write(0, 0, 2, "a", ok, 5), write(1, 0, 2, "b", ok, 5), read(2, 3, 4, "b", 5)}, porcupine.Ok},
		{"write acknowledged below a version already read", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), read(1, 2, 3, "a", 5), write(0, 4, 5, "b", ok, 4)}, porcupine.Illegal},
		{"cas from the current version", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 3, 5, "b", ok, 8), read(2, 4, 5, "b", 8)}, porcupine.Ok},
		{"cas from a stale version succeeds", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 3, "b", ok, 7), cas(1, 4, 5, 5, "c", ok, 8)}, porcupine.Illegal},
		{"cas keeps its version", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 3, 5, "b", ok, 5)}, porcupine.Illegal},
		{"cas on an absent record succeeds", []checker.RegisterOp{cas(1, 0, 1, 5, "b", ok, 8)}, porcupine.Illegal},
		{"cas fails although the version matched", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 3, 5, "b", fail, 0)}, porcupine.Illegal},
		{"cas fails on a stale version", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 3, "b", ok, 7), cas(1, 4, 5, 5, "c", fail, 0), read(1, 6, 7, "b", 7)}, porcupine.Ok},
		{"lost update: two cas from one version", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 4, 5, "b", ok, 8), cas(2, 2, 4, 5, "c", ok, 9)}, porcupine.Illegal},
		{"unknown cas applied", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 3, 5, "b", unknown, 0), read(2, 4, 5, "b", 8), cas(2, 6, 7, 8, "c", ok, 9)}, porcupine.Ok},
		{"unknown cas not applied", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), cas(1, 2, 3, 5, "b", unknown, 0), read(2, 4, 5, "a", 5), cas(2, 6, 7, 5, "c", ok, 9)}, porcupine.Ok},
		{"unknown cas on a stale version seen", []checker.RegisterOp{
			write(0, 0, 1, "a", ok, 5), write(0, 2, 3, "b", ok, 7), cas(1, 4, 5, 5, "c", unknown, 0), read(2, 6, 7, "c", 9)}, porcupine.Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := checker.CheckLinearizable(tt.ops, 10*time.Second)
			if res.Result != tt.want {
				t.Fatalf("got %s, want %s", res.Result, tt.want)
			}
			if tt.want == porcupine.Illegal && (len(res.IllegalKeys) != 1 || res.IllegalKeys[0] != "k") {
				t.Errorf("illegal keys %v, want [k]", res.IllegalKeys)
			}
		})
	}
}

func TestRegisterPartitions(t *testing.T) {
	ops := []checker.RegisterOp{write(0, 0, 1, "a", checker.Ok, 5), read(1, 2, 3, "", 0)}
	other := write(2, 0, 1, "x", checker.Ok, 6)
	other.Key = "other"
	ops = append(ops, other)
	res := checker.CheckLinearizable(ops, 10*time.Second)
	if res.Result != porcupine.Illegal || strings.Join(res.IllegalKeys, ",") != "k" {
		t.Fatalf("got %s with illegal keys %v; want Illegal for k only", res.Result, res.IllegalKeys)
	}
	path := filepath.Join(t.TempDir(), "k.html")
	if err := checker.VisualizeKeys(ops, res.IllegalKeys, path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "write(k, a)") {
		t.Fatalf("visualization: %v, %d bytes without the write", err, len(b))
	}
}

func TestRegisterReads(t *testing.T) {
	local := func(node string, inc int, call, ret int64, value string, version, index uint64) checker.RegisterOp {
		op := read(0, call, ret, value, version)
		op.Consistency, op.Node, op.Incarnation, op.Index = checker.Local, node, inc, index
		return op
	}
	tests := []struct {
		name    string
		ops     []checker.RegisterOp
		want    string // a substring of the only violation; "" for none
		restart string // likewise for CheckRestartMonotonic
	}{
		{name: "fine", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 0, 1, "", 0, 4), local("n1", 1, 2, 3, "a", 5, 5), local("n2", 1, 2, 3, "", 0, 4)}},
		{name: "local read goes back", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 2, 3, "a", 5, 5), local("n1", 1, 4, 5, "", 0, 4)},
			want: "went back in time", restart: ""},
		{name: "back after a restart", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 2, 3, "a", 5, 5), local("n1", 2, 4, 5, "", 0, 4)},
			restart: "went back in time after a restart"},
		{name: "overlapping reads may differ", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 2, 5, "a", 5, 5), local("n1", 1, 3, 4, "", 0, 4)}},
		{name: "read misses a write at its index", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 2, 3, "", 0, 6)},
			want: "acknowledged at version 5"},
		{name: "min_index read below its index", ops: []checker.RegisterOp{func() checker.RegisterOp {
			op := local("n1", 1, 2, 3, "", 0, 6)
			op.Consistency, op.MinIndex = checker.MinIndex, 7
			return op
		}()}, want: "min_index=7 read served at index 6"},
		{name: "value never written", ops: []checker.RegisterOp{local("n1", 1, 2, 3, "z", 5, 5)}, want: "no write"},
		{name: "value of a failed write", ops: []checker.RegisterOp{
			cas(0, 0, 1, 3, "a", checker.Fail, 0), local("n1", 1, 2, 3, "a", 5, 5)}, want: "failed definitely"},
		{name: "version differs from the write's", ops: []checker.RegisterOp{
			write(0, 0, 1, "a", checker.Ok, 5), local("n1", 1, 2, 3, "a", 6, 6)}, want: "has version 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, got []string, want string) {
				if want == "" && len(got) == 0 {
					return
				}
				if len(got) != 1 || !strings.Contains(got[0], want) {
					t.Errorf("%s: got %q, want one violation containing %q", what, got, want)
				}
			}
			check("CheckRegisterReads", checker.CheckRegisterReads(tt.ops), tt.want)
			check("CheckRestartMonotonic", checker.CheckRestartMonotonic(tt.ops), tt.restart)
		})
	}
}

func TestFirstViolation(t *testing.T) {
	ops := []checker.RegisterOp{
		write(0, 0, 1, "a", checker.Ok, 5),
		read(1, 2, 3, "a", 5),
		write(0, 4, 5, "b", checker.Ok, 7),
		read(1, 6, 8, "a", 5), // stale: the violation shows when it returns
		read(1, 9, 10, "b", 7),
	}
	at, ok := checker.FirstViolation(ops, "k", 10*time.Second)
	if !ok || at != 8 {
		t.Fatalf("first violation at %d (%t), want 8", at, ok)
	}
	if _, ok := checker.FirstViolation(ops[:3], "k", 10*time.Second); ok {
		t.Fatal("a linearizable history has a violation")
	}
}
