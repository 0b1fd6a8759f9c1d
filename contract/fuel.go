package contract

import (
	"cmp"
	"errors"
	"fmt"
)

// Fuel: the runtime bounds a call's computation by counting loop
// iterations in the guest instead of asking wazero to check, at every
// loop back-edge, whether the call's context has ended
// (WithCloseOnContextDone). wazero v1.12 makes that check leave compiled
// code for Go on each back-edge (wazero issue #2466), which was three
// quarters of a token transfer's CPU (docs/benchmarks.md).
//
// instrument rewrites a module so that it carries a mutable i64 global,
// exported as fuelExport, and decrements it at the head of every loop;
// when it reaches zero the guest traps (unreachable), and the runtime,
// reading the global back, reports the call as out of fuel. The host sets
// the global before every entry into the guest. Only the code and the
// global and export sections change; function, type and every other
// index stay as they were (the new global comes after all others).

// fuelExport is the name the fuel global is exported under.
const fuelExport = "tandem_fuel"

// DefaultMaxFuel is Options.MaxFuel's default: a tight guest loop runs
// about a billion iterations a second on the project's machine
// (TestLimits' loop stops after ~1 s).
const DefaultMaxFuel = 1_000_000_000

// Section ids (WebAssembly core specification, 5.5.2).
const (
	secCustom = 0
	secImport = 2
	secGlobal = 6
	secExport = 7
	secCode   = 10
)

// instrument returns wasm with the fuel global and the loop checks, the
// global starting at initial (the budget of the module's own
// initialisation). It refuses what it cannot parse, naming why. A module
// without code or without exports is returned as it is: nothing in it can
// run, and compiling it reports what is wrong with it.
func instrument(wasm []byte, initial uint64) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0 {
		return nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	var secs []section
	for p := 8; p < len(wasm); {
		id := wasm[p]
		size, n, err := readU32(wasm[p+1:])
		if err != nil {
			return nil, fmt.Errorf("section at %d: %w", p, err)
		}
		start := p + 1 + n
		end := start + int(size)
		if end > len(wasm) || end < start {
			return nil, fmt.Errorf("section %d at %d runs past the end", id, p)
		}
		secs = append(secs, section{id, wasm[start:end]})
		p = end
	}
	hasCode, hasExports := false, false
	for _, s := range secs {
		hasCode = hasCode || s.id == secCode
		hasExports = hasExports || s.id == secExport
	}
	if !hasCode || !hasExports {
		return wasm, nil
	}
	importedGlobals, err := countImportedGlobals(secs)
	if err != nil {
		return nil, err
	}
	var fuelIdx uint32
	out := append([]byte(nil), wasm[:8]...)
	sawGlobal, sawExport, sawCode := false, false, false
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// The new global: mutable i64, initial value as given.
	newGlobal := append([]byte{0x7E, 0x01, 0x42}, appendS64(nil, int64(initial))...)
	newGlobal = append(newGlobal, 0x0B)
	for _, s := range secs {
		switch {
		case s.id == secGlobal:
			count, n, err := readU32(s.body)
			if err != nil {
				return nil, fmt.Errorf("global section: %w", err)
			}
			fuelIdx = importedGlobals + count
			body := appendU32(nil, count+1)
			body = append(body, s.body[n:]...)
			emit(secGlobal, append(body, newGlobal...))
			sawGlobal = true
		case s.id == secExport:
			if !sawGlobal { // no global section: the new one goes before the exports
				fuelIdx = importedGlobals
				emit(secGlobal, append([]byte{1}, newGlobal...))
				sawGlobal = true
			}
			count, n, err := readU32(s.body)
			if err != nil {
				return nil, fmt.Errorf("export section: %w", err)
			}
			body := appendU32(nil, count+1)
			body = append(body, s.body[n:]...)
			body = appendU32(body, uint32(len(fuelExport)))
			body = append(body, fuelExport...)
			body = append(body, 0x03) // global
			emit(secExport, appendU32(body, fuelIdx))
			sawExport = true
		case s.id == secCode:
			if !sawExport {
				return nil, errors.New("the code section comes before the exports")
			}
			body, err := instrumentCode(s.body, fuelIdx)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(secCode, body)
			sawCode = true
		default:
			emit(s.id, s.body)
		}
	}
	if !sawCode || !sawExport {
		return nil, errors.New("sections out of order")
	}
	return out, nil
}

// section is one section of a module: its id and its contents.
type section struct {
	id   byte
	body []byte
}

// countImportedGlobals counts the globals the import section brings in:
// they come first in the global index space.
func countImportedGlobals(secs []section) (uint32, error) {
	for _, s := range secs {
		if s.id != secImport {
			continue
		}
		r := reader{b: s.body}
		count := r.u32()
		var globals uint32
		for i := uint32(0); i < count && r.err == nil; i++ {
			r.name() // module
			r.name() // field
			switch kind := r.byte(); kind {
			case 0x00: // function: type index
				r.u32()
			case 0x01: // table: reftype, limits
				r.byte()
				r.limits()
			case 0x02: // memory: limits
				r.limits()
			case 0x03: // global: valtype, mutability
				r.byte()
				r.byte()
				globals++
			default:
				return 0, fmt.Errorf("import section: unknown import kind %#x", kind)
			}
		}
		if r.err != nil {
			return 0, fmt.Errorf("import section: %w", r.err)
		}
		return globals, nil
	}
	return 0, nil
}

// instrumentCode rewrites every function body of a code section.
func instrumentCode(sec []byte, fuel uint32) ([]byte, error) {
	r := reader{b: sec}
	count := r.u32()
	out := appendU32(nil, count)
	// The check at the head of every loop:
	//   global.get F; i64.const 1; i64.sub; global.set F
	//   global.get F; i64.eqz; if; unreachable; end
	check := append([]byte{0x23}, appendU32(nil, fuel)...)
	check = append(check, 0x42, 0x01, 0x7D, 0x24)
	check = appendU32(check, fuel)
	check = append(check, 0x23)
	check = appendU32(check, fuel)
	check = append(check, 0x50, 0x04, 0x40, 0x00, 0x0B)
	for i := range count {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, r.err)
		}
		nb, err := instrumentBody(body, check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.p != len(r.b) {
		return nil, errors.New("bytes after the last function")
	}
	return out, nil
}

// instrumentBody copies one function body (locals, then instructions),
// inserting check after the block type of every loop.
func instrumentBody(body, check []byte) ([]byte, error) {
	r := reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()  // count
		r.byte() // type
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	out := make([]byte, 0, len(body)+len(body)/8)
	out = append(out, body[:r.p]...)
	for r.p < len(r.b) && r.err == nil {
		start := r.p
		op := r.byte()
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			r.blockType()
			out = append(out, r.b[start:r.p]...)
			if op == 0x03 {
				out = append(out, check...)
			}
			continue
		case op == 0x0C || op == 0x0D: // br, br_if
			r.u32()
		case op == 0x0E: // br_table
			n := r.u32()
			for i := uint64(0); i <= uint64(n) && r.err == nil; i++ {
				r.u32()
			}
		case op == 0x10: // call
			r.u32()
		case op == 0x11: // call_indirect
			r.u32()
			r.u32()
		case op == 0x1C: // select with types
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				r.byte()
			}
		case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			r.u32()
		case op >= 0x28 && op <= 0x3E: // loads and stores: memarg
			r.u32()
			r.u32()
		case op == 0x3F || op == 0x40: // memory.size, memory.grow
			r.byte()
		case op == 0x41: // i32.const
			r.leb(5)
		case op == 0x42: // i64.const
			r.leb(10)
		case op == 0x43: // f32.const
			r.bytes(4)
		case op == 0x44: // f64.const
			r.bytes(8)
		case op == 0xD0: // ref.null
			r.byte()
		case op == 0xD2: // ref.func
			r.u32()
		case op == 0xFC:
			switch sub := r.u32(); {
			case sub <= 7: // saturating truncations
			case sub == 8: // memory.init
				r.u32()
				r.byte()
			case sub == 9: // data.drop
				r.u32()
			case sub == 10: // memory.copy
				r.byte()
				r.byte()
			case sub == 11: // memory.fill
				r.byte()
			case sub == 12 || sub == 14: // table.init, table.copy
				r.u32()
				r.u32()
			case sub == 13 || (sub >= 15 && sub <= 17): // elem.drop, table.grow/size/fill
				r.u32()
			default:
				return nil, fmt.Errorf("unsupported instruction 0xfc %d at %d", sub, start)
			}
		case op <= 0x01 || op == 0x05 || op == 0x0B || op == 0x0F || op == 0x1A || op == 0x1B || op == 0xD1 || (op >= 0x45 && op <= 0xC4):
			// no immediates
		default:
			return nil, fmt.Errorf("unsupported instruction %#x at %d", op, start)
		}
		out = append(out, r.b[start:r.p]...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	p   int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) byte() byte {
	if r.err != nil || r.p >= len(r.b) {
		r.err = cmp.Or(r.err, errShort)
		return 0
	}
	c := r.b[r.p]
	r.p++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || r.p+n > len(r.b) {
		r.err = cmp.Or(r.err, errShort)
		return nil
	}
	b := r.b[r.p : r.p+n]
	r.p += n
	return b
}

// leb skips a LEB128 number of at most max bytes.
func (r *reader) leb(max int) {
	for i := 0; i < max; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.err = cmp.Or(r.err, errors.New("LEB128 number too long"))
}

func (r *reader) u32() uint32 {
	v, n, err := readU32(r.b[min(r.p, len(r.b)):])
	if r.err == nil && err != nil {
		r.err = err
	}
	r.p += n
	return v
}

func (r *reader) name() { r.bytes(int(r.u32())) }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// blockType skips a block type: empty (0x40), a value type (one byte), or
// a type index (s33).
func (r *reader) blockType() {
	if r.p >= len(r.b) {
		r.err = cmp.Or(r.err, errShort)
		return
	}
	switch c := r.b[r.p]; {
	case c == 0x40 || c == 0x7F || c == 0x7E || c == 0x7D || c == 0x7C || c == 0x7B || c == 0x70 || c == 0x6F:
		r.p++
	default:
		r.leb(5)
	}
}

func readU32(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, i, errShort
		}
		c := b[i]
		v |= uint32(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if i == 4 && c > 0x0F {
				return 0, i + 1, errors.New("u32 out of range")
			}
			return v, i + 1, nil
		}
	}
	return 0, 5, errors.New("u32 too long")
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
