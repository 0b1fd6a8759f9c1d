package main

import "time"

// Results is everything one run measured; it is written as results.json.
type Results struct {
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Smoke     bool      `json:"smoke"`
	Machine   Machine   `json:"machine"`
	Settings  Settings  `json:"settings"`
	Systems   []System  `json:"systems"`
	NotRun    []NotRun  `json:"not_run,omitempty"`
	Workloads []string  `json:"workloads"`
}

// Machine describes where the run happened.
type Machine struct {
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib"`
	CPU       string `json:"cpu"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	DataDir   string `json:"data_dir"`
}

// Settings are the load's shape.
type Settings struct {
	Clients         []int         `json:"clients"`
	Warmup          time.Duration `json:"warmup_ns"`
	Duration        time.Duration `json:"duration_ns"`
	Keys            int           `json:"keys"`
	ValueSize       int           `json:"value_size"`
	FailoverClients int           `json:"failover_clients"`
	FailoverTrials  int           `json:"failover_trials"`
	FailoverWindow  time.Duration `json:"failover_window_ns"`
}

// NotRun is a system the run skipped, and why.
type NotRun struct {
	Label  string `json:"label"`
	Reason string `json:"reason"`
}

// System is the measurements of one store.
type System struct {
	Key     string `json:"key"` // "tandem-plain", "etcd"
	Label   string `json:"label"`
	Version string `json:"version"`
	// LocalRead names the read-local workload for this store.
	LocalRead string `json:"local_read"`
	Steps     []Step `json:"steps"`
	// PeakRSS is each member's VmHWM in bytes after the steps (before
	// failover, which restarts members).
	PeakRSS  map[string]int64 `json:"peak_rss_bytes"`
	Failover *Failover        `json:"failover,omitempty"`
	// LoadAvg is /proc/loadavg when the store's measurement began and
	// ended: a busy machine (other jobs) shows here.
	LoadAvg [2]string `json:"loadavg"`
}

// Step is one workload at one concurrency.
type Step struct {
	Workload  string           `json:"workload"`
	Clients   int              `json:"clients"`
	Ops       int64            `json:"ops"`
	OpsPerSec float64          `json:"ops_per_sec"`
	P50       float64          `json:"p50_ms"`
	P99       float64          `json:"p99_ms"`
	P999      float64          `json:"p999_ms"`
	Max       float64          `json:"max_ms"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// ServerCPU is the CPU seconds of the three server processes over the
	// window; CPUPer1k is that per 1,000 successful operations.
	ServerCPU float64 `json:"server_cpu_s"`
	CPUPer1k  float64 `json:"server_cpu_s_per_1k_ops"`
	// ClientCPUPer1k is the load generator's own CPU per 1,000 operations.
	ClientCPUPer1k float64 `json:"client_cpu_s_per_1k_ops"`
}

// ErrorCount sums the errors of a step.
func (s *Step) ErrorCount() int64 {
	var n int64
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Failover is the trials of killing the leader under write load.
type Failover struct {
	Clients int     `json:"clients"`
	Trials  []Trial `json:"trials"`
}

// Trial is one SIGKILL of the leader. Recovery is the time from the kill
// to the first successful write that was sent after it.
type Trial struct {
	Killed     string  `json:"killed"`
	Recovered  bool    `json:"recovered"`
	RecoveryMs float64 `json:"recovery_ms"`
	// ErrorsAfterKill counts writes that failed after the kill.
	ErrorsAfterKill int64 `json:"errors_after_kill"`
	// OpsPerSec is the write throughput over the whole trial window.
	OpsPerSec float64 `json:"ops_per_sec"`
	Error     string  `json:"error,omitempty"`
}
