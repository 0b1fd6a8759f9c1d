package multiplex_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/tandemdb/tandem/multiplex"
)

// BenchmarkDo measures a request's round trip over one connection on
// loopback, with 64 callers at once as under the write benchmark: the
// cost of the protocol and its goroutines, with a handler that does
// nothing.
func BenchmarkDo(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	srv := serve(b, &multiplex.Server{Handler: h})
	c, err := multiplex.Dial(context.Background(), srv.URL, multiplex.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetParallelism(32) // 64 callers on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := []byte(`{"v":"x"}`)
		for pb.Next() {
			resp, err := c.Do(context.Background(), &multiplex.Request{Method: "PUT", Target: "/v1/tables/t/records/k", Body: body})
			if err != nil || resp.Status != http.StatusOK {
				b.Errorf("Do: %v", err)
				return
			}
		}
	})
}
