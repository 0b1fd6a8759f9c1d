package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tandemdb/tandem"
)

// CACert returns the cluster's CA certificate (PEM), which clients trust
// to reach the API over HTTPS. Fetching it is itself a TLS call: the first
// time, verify what you get by its fingerprint (`tandem ca` prints it) or
// read ca.crt from a node's data folder instead.
func (c *Client) CACert(ctx context.Context) ([]byte, error) {
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/cluster/ca", retry: retryTransport})
	if err != nil {
		return nil, err
	}
	return rep.body, nil
}

// CreateJoinToken creates a join token valid for ttl (0: the server's
// default, one hour) for `tandem serve --join URL --token T`. Its text is
// shown only now. Cluster admins only.
func (c *Client) CreateJoinToken(ctx context.Context, ttl time.Duration) (*tandem.CreatedJoinToken, error) {
	var body []byte
	if ttl > 0 {
		body, _ = json.Marshal(map[string]string{"ttl": ttl.String()})
	}
	rep, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/cluster/tokens", body: body})
	if err != nil {
		return nil, err
	}
	var tok tandem.CreatedJoinToken
	if err := json.Unmarshal(rep.body, &tok); err != nil || tok.Token == "" {
		return nil, fmt.Errorf("client: decode join token: %v", err)
	}
	return &tok, nil
}

// JoinTokens lists the cluster's join tokens (without secrets).
func (c *Client) JoinTokens(ctx context.Context) ([]tandem.JoinToken, error) {
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/cluster/tokens", retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var body struct {
		Tokens []tandem.JoinToken `json:"tokens"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return nil, fmt.Errorf("client: decode join tokens: %w", err)
	}
	return body.Tokens, nil
}

// DeleteJoinToken revokes a join token by ID.
func (c *Client) DeleteJoinToken(ctx context.Context, id string) error {
	if id == "" {
		return invalid("join token ID is empty")
	}
	_, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/cluster/tokens/" + url.PathEscape(id)})
	return err
}
