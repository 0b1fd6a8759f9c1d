//go:build unix

package contract_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used (user + system, all
// threads). Benchmarks report it per operation because on a shared machine
// wall time per operation mostly measures the other work.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
