package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tandemdb/tandem"
)

func contractPath(name string) (string, error) {
	if name == "" {
		return "", invalid("contract name is empty")
	}
	return "/v1/contracts/" + url.PathEscape(name), nil
}

func decodeContract(rep *reply) (*tandem.ContractInfo, error) {
	var body struct {
		Contract *tandem.ContractInfo `json:"contract"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil || body.Contract == nil {
		return nil, fmt.Errorf("client: decode contract: response has no \"contract\" object (%v)", err)
	}
	return body.Contract, nil
}

// DeployOption configures DeployContract.
type DeployOption func(*deployOptions)

type deployOptions struct{ rights string }

// WithRights chooses whose permissions the new version's functions run
// with: "contract" (the default: the contract's own, any table) or
// "caller" (tandem.RightsCaller: every read and write is checked against
// the caller's permissions, attribute permissions included).
func WithRights(rights string) DeployOption { return func(o *deployOptions) { o.rights = rights } }

// DeployContract uploads a WebAssembly module as a new version of contract
// name and makes it active. It returns the contract as stored (the new
// version is the last one) and the log index of the deploy. A module that
// is not a contract fails with CodeInvalid and the reason.
func (c *Client) DeployContract(ctx context.Context, name string, wasm []byte, opts ...DeployOption) (*tandem.ContractInfo, uint64, error) {
	p, err := contractPath(name)
	if err != nil {
		return nil, 0, err
	}
	var o deployOptions
	for _, f := range opts {
		f(&o)
	}
	var q url.Values
	if o.rights != "" {
		q = url.Values{"rights": {o.rights}}
	}
	rep, err := c.do(ctx, &call{method: http.MethodPut, path: p, query: q, body: wasm, header: []headerField{{"Content-Type", "application/wasm"}}})
	if err != nil {
		return nil, 0, err
	}
	info, err := decodeContract(rep)
	return info, rep.index(), err
}

// Contract returns a contract's versions and active version.
func (c *Client) Contract(ctx context.Context, name string, opts ...ReadOption) (*tandem.ContractInfo, error) {
	p, err := contractPath(name)
	if err != nil {
		return nil, err
	}
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: p, query: readQuery(nil, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	return decodeContract(rep)
}

// Contracts lists every contract.
func (c *Client) Contracts(ctx context.Context, opts ...ReadOption) ([]tandem.ContractInfo, error) {
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/contracts", query: readQuery(nil, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var body struct {
		Contracts []tandem.ContractInfo `json:"contracts"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return nil, fmt.Errorf("client: decode contracts: %w", err)
	}
	return body.Contracts, nil
}

// RollbackContract makes an earlier (or later) version of a contract
// active again.
func (c *Client) RollbackContract(ctx context.Context, name string, version uint64) (*tandem.ContractInfo, error) {
	p, err := contractPath(name)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]uint64{"version": version})
	rep, err := c.do(ctx, &call{method: http.MethodPost, path: p + "/rollback", body: b})
	if err != nil {
		return nil, err
	}
	return decodeContract(rep)
}

// CallContract calls a contract function with arg (JSON-encoded unless it
// is already a json.RawMessage or nil). A function's own error is a
// CodeContractError; a misbehaving contract a CodeContractFault.
// Read-only functions honour the read options; others ignore them.
func (c *Client) CallContract(ctx context.Context, name, function string, arg any, opts ...ReadOption) (*tandem.CallResult, error) {
	p, err := contractPath(name)
	if err != nil {
		return nil, err
	}
	if function == "" {
		return nil, invalid("function name is empty")
	}
	var body []byte
	switch a := arg.(type) {
	case nil:
	case json.RawMessage:
		body = a
	default:
		if body, err = json.Marshal(arg); err != nil {
			return nil, fmt.Errorf("client: encode argument: %w", err)
		}
	}
	rep, err := c.do(ctx, &call{method: http.MethodPost, path: p + "/" + url.PathEscape(function), body: body, query: readQuery(nil, opts)})
	if err != nil {
		return nil, err
	}
	var res tandem.CallResult
	if err := json.Unmarshal(rep.body, &res); err != nil {
		return nil, fmt.Errorf("client: decode call result: %w", err)
	}
	return &res, nil
}

// Events returns up to limit contract events committed after log index
// after, in commit order.
func (c *Client) Events(ctx context.Context, after uint64, limit int, opts ...ReadOption) ([]tandem.StoredEvent, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/events", query: readQuery(q, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var body struct {
		Events []tandem.StoredEvent `json:"events"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return nil, fmt.Errorf("client: decode events: %w", err)
	}
	return body.Events, nil
}
