package node

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetrics builds the node's Prometheus registry. Each node has its own
// registry (no global state), so several nodes can run in one process.
func newMetrics(n *Node) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_applied_index", Help: "Log index of the last entry applied to this node's store.",
		}, func() float64 { return float64(n.store.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_is_leader", Help: "1 if this node is the Raft leader.",
		}, func() float64 {
			if n.raft.IsLeader() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_contract_modules_loaded", Help: "Contract modules compiled on this node (active versions, and others used in the last minute).",
		}, func() float64 { return float64(n.wasm.Loaded()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_raft_commit_index", Help: "Latest index this node knows to be committed.",
		}, func() float64 { return float64(n.raft.CommitIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tandem_raft_term", Help: "Current Raft term.",
		}, func() float64 {
			t, _ := strconv.ParseFloat(n.raft.Stats()["term"], 64)
			return t
		}),
	)
	if n.audit != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tandem_audit_dropped_total",
			Help: "Audit entries (failed logins, denials) dropped because the audit queue was full or the proposal failed.",
		}, func() float64 { return float64(n.audit.Dropped()) }))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
