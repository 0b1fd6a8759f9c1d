package contract

import (
	"encoding/binary"

	"github.com/tandemdb/tandem"
)

// vectorSections are the module sections whose payload starts with a
// count of entries, each at least one byte long (WebAssembly core spec,
// 5.5: type, import, function, table, memory, global, export, element,
// code and data sections).
var vectorSections = [12]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 9: true, 10: true, 11: true}

// checkVectorCounts refuses a module whose sections declare more entries
// than their bytes can hold. wazero (v1.12) sizes a section's entries from
// the declared count before reading them, so a 16-byte module declaring
// billions of imports made it allocate hundreds of GB and killed the node
// with a fatal out-of-memory error (found by FuzzValidate). This reads only
// section headers and the first count of each; everything else about the
// module is wazero's to judge.
func checkVectorCounts(wasm []byte) error {
	if len(wasm) < 8 {
		return nil
	}
	p := wasm[8:]
	for len(p) > 0 {
		id := p[0]
		size, n := binary.Uvarint(p[1:])
		if n <= 0 {
			return nil
		}
		// A section longer than what is left is cut to what is left:
		// wazero reads its count before it notices.
		if rest := uint64(len(p) - 1 - n); size > rest {
			size = rest
		}
		payload := p[1+n : 1+n+int(size)]
		p = p[1+n+int(size):]
		if int(id) >= len(vectorSections) || !vectorSections[id] {
			continue
		}
		count, m := binary.Uvarint(payload)
		if m <= 0 {
			// Too short for its own count: wazero reads the count from
			// the bytes after the section instead (a 16-byte module with
			// an empty export section made it allocate 14 GB; found by
			// FuzzInstrument).
			return tandem.Errorf(tandem.CodeInvalid, "the module does not compile: section %d is too short for its entry count", id)
		}
		if count > uint64(len(payload)-m) {
			return tandem.Errorf(tandem.CodeInvalid, "the module does not compile: section %d declares %d entries in %d bytes", id, count, len(payload)-m)
		}
	}
	return nil
}
