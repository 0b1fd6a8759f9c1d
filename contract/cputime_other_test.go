//go:build !unix

package contract_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
