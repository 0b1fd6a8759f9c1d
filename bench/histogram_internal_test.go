package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The buckets tile the whole uint64 range in order, each within 1/64 of
// its values.
func TestBuckets(t *testing.T) {
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Fatalf("bucketOf(MaxUint64) = %d, want %d", got, numBuckets-1)
	}
	if got := bucketMax(numBuckets - 1); got != math.MaxUint64 {
		t.Fatalf("bucketMax(last) = %d", got)
	}
	var lo uint64 // the smallest value of bucket i
	for i := range numBuckets {
		hi := bucketMax(i)
		if hi < lo {
			t.Fatalf("bucket %d: max %d below min %d", i, hi, lo)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo > 0 && float64(hi-lo)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d", i, lo, hi, subCount)
		}
		lo = hi + 1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Uint64() >> rng.IntN(64)
		if i := bucketOf(v); bucketMax(i) < v || (i > 0 && bucketMax(i-1) >= v) {
			t.Fatalf("value %d in bucket %d = (%d, %d]", v, i, bucketMax(i-1), bucketMax(i))
		}
	}
}
