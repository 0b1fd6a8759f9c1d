package api

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
)

func TestReadLimited(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		declared int64 // Content-Length; -1: unknown (chunked)
		want     string
		code     tandem.Code
	}{
		{"declared length", `{"a":1}`, 7, `{"a":1}`, ""},
		{"unknown length", `{"a":1}`, -1, `{"a":1}`, ""},
		{"at the limit", strings.Repeat("x", 16), 16, strings.Repeat("x", 16), ""},
		{"declared over the limit", strings.Repeat("x", 17), 17, "", tandem.CodeTooLarge},
		{"unknown length over the limit", strings.Repeat("x", 17), -1, "", tandem.CodeTooLarge},
		{"shorter than declared", `{"a":1}`, 12, "", tandem.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(tt.body)))
			r.ContentLength = tt.declared
			got, err := readLimited(httptest.NewRecorder(), r, 16)
			if tt.code != "" {
				if tandem.ErrorCode(err) != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readLimited = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
