package contract_test

import (
	"fmt"
	"testing"
)

// BenchmarkTokenTransfer measures one execution of token.transfer (no
// replication): the per-call cost of the runtime and the guest. cpu-ns/op
// is the process's CPU time per call, steadier than ns/op on a busy machine.
func BenchmarkTokenTransfer(b *testing.B) {
	e := tokenEnv(b)
	for i := range 100 {
		e.commit("token", "mint", map[string]any{"to": fmt.Sprint("a", i), "amount": 1 << 40})
	}
	b.ResetTimer()
	cpu0, ok := processCPU()
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, err := e.exec("token", "transfer", map[string]any{"from": fmt.Sprint("a", i%100), "to": fmt.Sprint("a", (i+1)%100), "amount": 1}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if cpu1, _ := processCPU(); ok {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
	}
}
