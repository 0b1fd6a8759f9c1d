package checker_test

import (
	"strings"
	"testing"

	"github.com/tandemdb/tandem/tests/chaos/checker"
)

func TestSetChecks(t *testing.T) {
	inserts := []checker.SetInsert{
		{Key: "s1", Call: 0, Return: 10, Outcome: checker.Ok},
		{Key: "s2", Call: 5, Return: 20, Outcome: checker.Unknown},
		{Key: "s3", Call: 5, Return: 20, Outcome: checker.Fail},
	}
	if got := checker.CheckSetFinal("n1", []string{"s1", "s2"}, inserts); len(got) != 0 {
		t.Errorf("valid set: %q", got)
	}
	for listed, want := range map[string]string{
		"s2":       "acknowledged insert s1 ",
		"s1,s1":    "listed twice",
		"s1,s3":    "present but failed",
		"s1,bogus": "never inserted",
	} {
		got := checker.CheckSetFinal("n1", strings.Split(listed, ","), inserts)
		if len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("listed %s: got %q, want %q", listed, got, want)
		}
	}
	counts := []checker.SetCount{
		{Call: 11, Return: 12, Count: 1}, // fine
		{Call: 11, Return: 12, Count: 2}, // fine: s2 may be in
		{Call: 11, Return: 12, Count: 0}, // s1 was acknowledged
		{Call: 1, Return: 2, Count: 2},   // only s1 had been called
		{Call: 21, Return: 22, Count: 3}} // s3 failed
	got := checker.CheckSetCounts(counts, inserts)
	if len(got) != 3 {
		t.Errorf("counts: got %q, want 3 violations", got)
	}
}
