package store

import (
	"bytes"
	"slices"

	"github.com/tandemdb/tandem"
)

// access is how a plan finds candidate records.
type access int

const (
	accessGet     access = iota // point reads of plan.keys
	accessRecords               // scans of record-key spans
	accessIndex                 // scans of index-key spans, then point reads
)

// span is a key range [lo, hi).
type span struct{ lo, hi []byte }

// plan is the chosen access path of a query.
type plan struct {
	name      string // for QueryResult.Plan
	access    access
	attr      string   // the indexed attribute, for accessIndex
	keys      [][]byte // record keys, ascending, for accessGet
	spans     []span   // ascending, disjoint
	recPrefix []byte
	idxPrefix []byte
	// ordered reports that the access path yields rows in the query's
	// order (reversed when descending), so that it can stop after a page.
	ordered bool
	// sortFromKey reports that the index is on the sort attribute, so a
	// row's sort value is the index value.
	sortFromKey bool
	// residual are the filters the access path does not guarantee.
	residual []*cond
}

// makePlan chooses an access path; see doc.go for the order of
// preference. sortAttr is "" for primary key order.
func makePlan(sc *tandem.TableSchema, conds []*cond, sortAttr string) *plan {
	p := &plan{recPrefix: recordPrefix(sc.Name)}
	pk := sc.PrimaryKey

	// 1. Primary key equality: point reads.
	if i := slices.IndexFunc(conds, func(c *cond) bool { return c.attr == pk && c.isEqIn() }); i >= 0 {
		c := conds[i]
		p.name, p.access = "pk get", accessGet
		for _, v := range c.vals {
			p.keys = append(p.keys, append(slices.Clip(p.recPrefix), v...))
		}
		p.ordered = sortAttr == "" || len(p.keys) <= 1
		p.residual = without(conds, i)
		return p
	}

	// 2. Equality on an indexed attribute.
	if i := pickIndexed(sc, conds, sortAttr, (*cond).isEqIn); i >= 0 {
		c := conds[i]
		p.useIndex(sc, c.attr, sortAttr)
		for _, v := range c.vals {
			lo := append(slices.Clip(p.idxPrefix), v...)
			p.spans = append(p.spans, span{lo, prefixEnd(lo)})
		}
		p.name = "index " + c.attr + " eq"
		if c.op == tandem.FilterIn {
			p.name = "index " + c.attr + " in"
		}
		p.ordered = p.sortFromKey || (sortAttr == "" && len(c.vals) == 1)
		p.residual = without(conds, i)
		return p
	}

	// 3. Range or prefix on an indexed attribute.
	if i := pickIndexed(sc, conds, sortAttr, (*cond).isRange); i >= 0 {
		attr := conds[i].attr
		p.useIndex(sc, attr, sortAttr)
		p.name = "index " + attr + " range"
		p.spans, p.residual = rangeSpans(p.idxPrefix, conds, attr, conds[i].typ)
		p.ordered = p.sortFromKey
		return p
	}

	// 4. Range or prefix on the primary key.
	if i := slices.IndexFunc(conds, func(c *cond) bool { return c.attr == pk && c.isRange() }); i >= 0 {
		p.name, p.access = "pk range", accessRecords
		p.spans, p.residual = rangeSpans(p.recPrefix, conds, pk, sc.KeyType())
		p.ordered = sortAttr == ""
		return p
	}

	p.residual = conds
	// 5. The whole index on the sort attribute, in order.
	if sortAttr != "" && sc.HasIndex(sortAttr) {
		p.useIndex(sc, sortAttr, sortAttr)
		p.name = "index " + sortAttr + " order"
		p.spans = []span{{p.idxPrefix, prefixEnd(p.idxPrefix)}}
		p.ordered = true
		return p
	}

	// 6. Every record, in key order.
	p.name, p.access = "scan", accessRecords
	p.spans = []span{{p.recPrefix, prefixEnd(p.recPrefix)}}
	p.ordered = sortAttr == ""
	return p
}

func (p *plan) useIndex(sc *tandem.TableSchema, attr, sortAttr string) {
	p.access, p.attr = accessIndex, attr
	p.idxPrefix = indexPrefix(sc.Name, attr)
	p.sortFromKey = attr == sortAttr
}

// pickIndexed returns the position of the first filter accepted by ok on
// an indexed attribute, preferring the sort attribute, or -1.
func pickIndexed(sc *tandem.TableSchema, conds []*cond, sortAttr string, ok func(*cond) bool) int {
	first := -1
	for i, c := range conds {
		if !ok(c) || !sc.HasIndex(c.attr) {
			continue
		}
		if c.attr == sortAttr {
			return i
		}
		if first < 0 {
			first = i
		}
	}
	return first
}

// rangeSpans combines every range filter on attr into one span of keys
// below prefix, and returns it with the remaining filters. Values of attr
// have type t.
func rangeSpans(prefix []byte, conds []*cond, attr string, t tandem.AttrType) ([]span, []*cond) {
	lo := append(slices.Clip(prefix), typeTag(t))
	hi := append(slices.Clip(prefix), typeTag(t)+1)
	var rest []*cond
	for _, c := range conds {
		if c.attr != attr || !c.isRange() {
			rest = append(rest, c)
			continue
		}
		k := append(slices.Clip(prefix), c.vals[0]...)
		switch c.op {
		case tandem.FilterGe:
			lo = maxKey(lo, k)
		case tandem.FilterGt:
			lo = maxKey(lo, prefixEnd(k))
		case tandem.FilterLe:
			hi = minKey(hi, prefixEnd(k))
		case tandem.FilterLt:
			hi = minKey(hi, k)
		case tandem.FilterPrefix:
			lo, hi = maxKey(lo, k), minKey(hi, prefixEnd(k))
		}
	}
	if bytes.Compare(lo, hi) >= 0 {
		return nil, rest
	}
	return []span{{lo, hi}}, rest
}

// typeTag returns the tag of the encoding of values of type t.
func typeTag(t tandem.AttrType) byte {
	switch t {
	case tandem.TypeBool:
		return tagBool
	case tandem.TypeInt:
		return tagInt
	case tandem.TypeFloat:
		return tagFloat
	case tandem.TypeTime:
		return tagTime
	}
	return tagString
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

func without(conds []*cond, i int) []*cond {
	return append(slices.Clip(conds[:i]), conds[i+1:]...)
}
