package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kinds of register operations.
const (
	Read  = "read"
	Write = "write" // unconditional PUT
	CAS   = "cas"   // PUT with If-Match: "Expect"
)

// RegisterOp is one call of the registers workload, as recorded.
type RegisterOp struct {
	// Process identifies a sequential client for porcupine. A worker
	// takes a new one after an unknown outcome, since the old operation
	// may still be in flight.
	Process     int    `json:"process"`
	Key         string `json:"key"`
	Kind        string `json:"kind"`
	Value       string `json:"value,omitempty"`  // written, or read
	Expect      uint64 `json:"expect,omitempty"` // cas: the version in If-Match
	Consistency string `json:"consistency,omitempty"`
	MinIndex    uint64 `json:"min_index,omitempty"`
	Node        string `json:"node"`
	// Incarnation counts the starts of the node's process; -1 when the
	// process was restarted during the call, so it is unclear which one
	// answered.
	Incarnation int     `json:"incarnation"`
	Call        int64   `json:"call"`   // ns since the run started
	Return      int64   `json:"return"` // ns since the run started
	Outcome     Outcome `json:"outcome"`
	Found       bool    `json:"found,omitempty"`   // read: the record exists
	Version     uint64  `json:"version,omitempty"` // read: its ETag; write, cas: the new version
	Index       uint64  `json:"index,omitempty"`   // Tandem-Index of the answer
	Err         string  `json:"err,omitempty"`
}

// RegisterInput is a register operation as porcupine sees it.
type RegisterInput struct {
	Key    string
	Kind   string
	Value  string
	Expect uint64
}

// RegisterOutput is what the operation returned.
type RegisterOutput struct {
	Outcome Outcome
	Found   bool
	Value   string
	Version uint64
}

// registerState is one key's state in the model. Value "" is a record
// that does not exist. Version 0 with a Value means the write that set it
// had an unknown outcome, so its version is not known, only that it is at
// least Floor.
type registerState struct {
	Value   string
	Version uint64
	Floor   uint64
}

// atLeast is the lowest version the record can have.
func (s registerState) atLeast() uint64 {
	if s.Version != 0 {
		return s.Version
	}
	return s.Floor
}

// versionCanBe reports whether the record's version can be v.
func (s registerState) versionCanBe(v uint64) bool {
	if s.Version != 0 {
		return s.Version == v
	}
	return s.Value != "" && v >= s.Floor
}

// stepRegister is the sequential specification of one key.
//
// Versions are log indices: a later write gets a version at least as high
// (two writes batched into one log entry share it), and a compare-and-set
// applies only if the version is the expected one and then gets a higher
// one. An unknown write or compare-and-set may apply here; if in truth it
// did not, the checker can place it at the end of the history, where it
// changes nothing anyone saw.
func stepRegister(s registerState, in RegisterInput, out RegisterOutput) (bool, registerState) {
	switch in.Kind {
	case Read:
		if !out.Found {
			return s.Value == "", s
		}
		if out.Value != s.Value || !s.versionCanBe(out.Version) {
			return false, s
		}
		return true, registerState{Value: s.Value, Version: out.Version}
	case Write:
		switch out.Outcome {
		case Ok:
			return out.Version >= max(s.atLeast(), 1), registerState{Value: in.Value, Version: out.Version}
		case Unknown:
			return true, registerState{Value: in.Value, Floor: max(s.atLeast(), 1)}
		default:
			return true, s
		}
	case CAS:
		switch out.Outcome {
		case Ok:
			if !s.versionCanBe(in.Expect) || out.Version <= in.Expect {
				return false, s
			}
			return true, registerState{Value: in.Value, Version: out.Version}
		case Fail:
			// 412: the version was not the expected one. With an unknown
			// version the model cannot tell, so it accepts.
			return s.Version == 0 || s.Version != in.Expect, s
		case Unknown:
			if s.versionCanBe(in.Expect) {
				return true, registerState{Value: in.Value, Floor: in.Expect + 1}
			}
			return true, s
		}
		return true, s
	}
	panic(fmt.Sprintf("checker: unknown register operation %q", in.Kind))
}

// RegisterModel is the porcupine model of the registers workload,
// partitioned by key.
func RegisterModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				k := op.Input.(RegisterInput).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, len(keys))
			for i, k := range keys {
				out[i] = byKey[k]
			}
			return out
		},
		Init: func() any { return registerState{} },
		Step: func(state, input, output any) (bool, any) {
			return stepRegister(state.(registerState), input.(RegisterInput), output.(RegisterOutput))
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(RegisterInput), output.(RegisterOutput)
			res := string(out.Outcome)
			if out.Outcome == Ok && in.Kind != Read {
				res = fmt.Sprintf("ok v%d", out.Version)
			}
			switch in.Kind {
			case Read:
				if !out.Found {
					return fmt.Sprintf("read(%s) -> absent", in.Key)
				}
				return fmt.Sprintf("read(%s) -> %s v%d", in.Key, out.Value, out.Version)
			case Write:
				return fmt.Sprintf("write(%s, %s) -> %s", in.Key, in.Value, res)
			default:
				return fmt.Sprintf("cas(%s, v%d, %s) -> %s", in.Key, in.Expect, in.Value, res)
			}
		},
		DescribeState: func(state any) string {
			s := state.(registerState)
			switch {
			case s.Value == "":
				return "absent"
			case s.Version == 0:
				return fmt.Sprintf("%s v>=%d", s.Value, s.Floor)
			}
			return fmt.Sprintf("%s v%d", s.Value, s.Version)
		},
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

// PorcupineOps converts a history into porcupine operations: every write
// and compare-and-set that may have been applied, and every successful
// linearizable read. Unknown operations return at the end of the history.
func PorcupineOps(ops []RegisterOp) []porcupine.Operation {
	var end int64
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
	}
	end++
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		switch {
		case op.Outcome == NotSent:
			continue
		case op.Kind == Read && (op.Outcome != Ok || op.Consistency != Linearizable):
			continue
		}
		ret := op.Return
		if op.Outcome == Unknown {
			ret = end
		}
		meta := op.Node
		if op.Consistency != "" {
			meta += " " + op.Consistency
		}
		if op.Err != "" {
			meta += ": " + op.Err
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Process,
			Input:    RegisterInput{Key: op.Key, Kind: op.Kind, Value: op.Value, Expect: op.Expect},
			Call:     op.Call,
			Output:   RegisterOutput{Outcome: op.Outcome, Found: op.Found, Value: op.Value, Version: op.Version},
			Return:   ret,
			Metadata: meta,
		})
	}
	return out
}

// LinearizabilityResult is the verdict of CheckLinearizable.
type LinearizabilityResult struct {
	Result porcupine.CheckResult
	// IllegalKeys are the keys whose histories are not linearizable.
	IllegalKeys []string
	Operations  int // operations given to porcupine
	Elapsed     time.Duration
}

// CheckLinearizable checks the linearizable reads and all writes of a
// registers history with porcupine, giving up after timeout (then the
// result is porcupine.Unknown). When the history is not linearizable it
// finds the keys at fault.
func CheckLinearizable(ops []RegisterOp, timeout time.Duration) LinearizabilityResult {
	start := time.Now()
	pops := PorcupineOps(ops)
	model := RegisterModel()
	res := LinearizabilityResult{Operations: len(pops)}
	res.Result = porcupine.CheckOperationsTimeout(model, pops, timeout)
	if res.Result == porcupine.Illegal {
		for _, part := range model.Partition(pops) {
			if porcupine.CheckOperationsTimeout(model, part, timeout) == porcupine.Illegal {
				res.IllegalKeys = append(res.IllegalKeys, part[0].Input.(RegisterInput).Key)
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// FirstViolation returns the earliest time by which the history of key
// had become non-linearizable: the shortest prefix (the operations called
// by then, those still running counted as unknown) that porcupine
// rejects. Linearizability is prefix-closed, so a binary search over the
// return times finds it. ok is false if the whole history is linearizable
// (or porcupine gave up).
func FirstViolation(ops []RegisterOp, key string, timeout time.Duration) (at int64, ok bool) {
	var mine []RegisterOp
	var times []int64
	for _, op := range ops {
		if op.Key == key {
			mine = append(mine, op)
			times = append(times, op.Return)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	model := RegisterModel()
	illegal := func(t int64) bool {
		var prefix []RegisterOp
		for _, op := range mine {
			switch {
			case op.Call > t:
			case op.Return <= t:
				prefix = append(prefix, op)
			case op.Kind != Read:
				op.Outcome = Unknown
				prefix = append(prefix, op)
			}
		}
		return porcupine.CheckOperationsTimeout(model, PorcupineOps(prefix), timeout) == porcupine.Illegal
	}
	i := sort.Search(len(times), func(i int) bool { return illegal(times[i]) })
	if i == len(times) {
		return 0, false
	}
	return times[i], true
}

// VisualizeKeys writes porcupine's HTML visualization of the history of
// the given keys to path, with annotations (such as the faults injected).
func VisualizeKeys(ops []RegisterOp, keys []string, path string, annotations ...porcupine.Annotation) error {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var sel []RegisterOp
	for _, op := range ops {
		if want[op.Key] {
			sel = append(sel, op)
		}
	}
	model := RegisterModel()
	_, info := porcupine.CheckOperationsVerbose(model, PorcupineOps(sel), time.Minute)
	info.AddAnnotations(annotations)
	return porcupine.VisualizePath(model, info, path)
}
