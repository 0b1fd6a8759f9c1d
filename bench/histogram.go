package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the precision: each power of two is split into 1<<subBits
// buckets, so a quantile is within 1/64 (1.6%) of the true value.
const subBits = 6

const (
	subCount = 1 << subBits
	// Values below 2*subCount have a bucket each; each further power of two
	// up to 2^64 adds subCount buckets.
	numBuckets = (64 - subBits + 1) * subCount
)

// Histogram counts durations in logarithmic buckets of bounded relative
// error, like an HDR histogram with fewer features. The zero value is
// empty and ready to use. It is not safe for concurrent use: give each
// goroutine its own and Merge them.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      uint64 // nanoseconds
	min, max uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return shift*subCount + int(v>>shift)
}

// bucketMax returns the largest value that falls in bucket i.
func bucketMax(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i%subCount + subCount)
	return (m+1)<<shift - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += v
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded duration, or 0.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded duration, or 0.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean of the recorded durations, or 0.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the duration below or at which a fraction q of the
// recorded ones fall (0.99 for p99): the upper bound of the bucket holding
// that rank, so it errs high by at most 1.6%, and never beyond Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketMax(i), h.max))
		}
	}
	return time.Duration(h.max)
}
