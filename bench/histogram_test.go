package bench_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tandemdb/tandem/bench"
)

func TestHistogramEmpty(t *testing.T) {
	var h bench.Histogram
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Errorf("empty histogram: count %d p50 %v max %v min %v mean %v", h.Count(), h.Quantile(0.5), h.Max(), h.Min(), h.Mean())
	}
}

func TestHistogramQuantiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values func(i int) time.Duration // i from 1 to n
		n      int
	}{
		{"small exact values", func(i int) time.Duration { return time.Duration(i) }, 60},
		{"uniform microseconds", func(i int) time.Duration { return time.Duration(i) * time.Microsecond }, 100000},
		{"uniform seconds", func(i int) time.Duration { return time.Duration(i) * time.Second }, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h bench.Histogram
			// Record in a shuffled order: the order must not matter.
			rng := rand.New(rand.NewPCG(1, 1))
			for _, i := range rng.Perm(tc.n) {
				h.Record(tc.values(i + 1))
			}
			if h.Count() != uint64(tc.n) {
				t.Fatalf("count %d, want %d", h.Count(), tc.n)
			}
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
				// The exact quantile is the value of rank ceil(q*n).
				rank := int(q*float64(tc.n) + 0.999999)
				exact := tc.values(rank)
				got := h.Quantile(q)
				if got < exact || float64(got-exact) > float64(exact)/64 {
					t.Errorf("Quantile(%v) = %v, want %v within +1/64", q, got, exact)
				}
			}
			if h.Quantile(1) != tc.values(tc.n) || h.Max() != tc.values(tc.n) {
				t.Errorf("Quantile(1) = %v, Max = %v, want %v", h.Quantile(1), h.Max(), tc.values(tc.n))
			}
			if h.Quantile(0) != tc.values(1) || h.Min() != tc.values(1) {
				t.Errorf("Quantile(0) = %v, Min = %v, want %v", h.Quantile(0), h.Min(), tc.values(1))
			}
			if mean, want := h.Mean(), (tc.values(1)+tc.values(tc.n))/2; mean != want {
				t.Errorf("Mean = %v, want %v", mean, want)
			}
		})
	}
}

func TestHistogramNeverAboveMax(t *testing.T) {
	var h bench.Histogram
	h.Record(1000001 * time.Nanosecond) // in a bucket whose upper bound is higher
	h.Record(-5)                        // counts as zero
	if got := h.Quantile(0.99); got != h.Max() {
		t.Errorf("p99 = %v, want the max %v", got, h.Max())
	}
	if h.Min() != 0 {
		t.Errorf("Min = %v, want 0", h.Min())
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all bench.Histogram
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range 10000 {
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty bench.Histogram
	a.Merge(&empty)
	empty.Merge(&a)
	empty.Merge(&b)
	if empty != all {
		t.Errorf("merged histogram differs: count %d p99 %v max %v min %v, want %d %v %v %v",
			empty.Count(), empty.Quantile(0.99), empty.Max(), empty.Min(), all.Count(), all.Quantile(0.99), all.Max(), all.Min())
	}
}
