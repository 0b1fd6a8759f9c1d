package checker

import "testing"

func TestSubsetReaches(t *testing.T) {
	// Accounts 0, 1, 2; moves: 5 from 0 to 1, 3 from 1 to 2, 4 from 2 to 0.
	moves := [][2]int{{0, 1}, {1, 2}, {2, 0}}
	amounts := []int64{5, 3, 4}
	for _, tt := range []struct {
		target []int64
		found  bool
	}{
		{[]int64{0, 0, 0}, true},   // none applied
		{[]int64{-5, 2, 3}, true},  // the first two
		{[]int64{-1, 5, -4}, true}, // the first and the third
		{[]int64{-1, 2, -1}, true}, // all three
		{[]int64{-4, 3, 1}, false},
		{[]int64{-10, 10, 0}, false}, // the first twice
	} {
		found, exact := subsetReaches(tt.target, moves, amounts, 100)
		if found != tt.found || !exact {
			t.Errorf("target %v: found %v exact %v; want found %v, exact", tt.target, found, exact, tt.found)
		}
	}

	// Many distinct moves: too many partial sums to track, so only the
	// bounds are checked; a target outside them is still refused.
	moves, amounts = nil, nil
	for i := range 60 {
		moves = append(moves, [2]int{i % 4, (i + 1 + i/4%3) % 4})
		amounts = append(amounts, int64(1+i*7%23))
	}
	if found, exact := subsetReaches([]int64{1, -1, 0, 0}, moves, amounts, 1000); !found || exact {
		t.Errorf("many moves: found %v exact %v; want the bounds only (found, not exact)", found, exact)
	}
	if found, exact := subsetReaches([]int64{100000, -100000, 0, 0}, moves, amounts, 1000); found || !exact {
		t.Errorf("many moves, target out of bounds: found %v exact %v; want not found, exact", found, exact)
	}
}
