package contract

import (
	"errors"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/internal/wire"
)

// request is one decoded host_call request (internal/wire).
type request struct {
	op      byte
	a, b, c string
}

func decodeRequest(raw []byte) (request, error) {
	r := wire.Reader{B: raw}
	req := request{op: r.Byte(), a: r.Str(), b: r.Str(), c: r.Str()}
	if r.Err == nil && len(r.B) != 0 {
		return request{}, errors.New("trailing bytes in request")
	}
	return req, r.Err
}

func errorResponse(te *tandem.Error) []byte {
	b := []byte{wire.StatusError}
	b = wire.AppendStr(b, string(te.Code))
	return wire.AppendStr(b, tandem.ErrorMessage(te))
}
