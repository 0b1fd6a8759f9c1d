package tandem

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// The log entry encoding. Entries are written once by the leader and
// decoded by every node on every apply, so the format is a compact binary
// one rather than JSON (JSON encoding and decoding of entries was ~12% of a
// node's CPU under write load). Record bodies stay JSON bytes, copied as
// they are. Table schemas, rare, are embedded as JSON.
//
//	entry    = format(1 byte = entryFormat) time(varint) commands
//	commands = count(uvarint) command*
//	command  = type(1 byte) payload
//	tx       = conds(uvarint) cond* ops(uvarint) op* events(uvarint) event*
//	cond     = kind(1) table(str) key(str) version(uvarint) [query(bytes, JSON)] [hash(str)]
//	           (query: query conditions; hash: query and content conditions)
//	op       = kind(1) table(str) key(str) record(bytes) hasIf(1) [ifVersion(uvarint)]
//	event    = contract(str) topic(str) payload(bytes)
//	json     = command as JSON (bytes): rare commands (contracts, users,
//	           roles...) that do not need a compact form
//	str, bytes = length(uvarint) data
//
// The first byte lets the format change without breaking logs on disk.
// Format 3 added the contract and query condition kinds (the query and
// hash follow a query condition) and the events of a tx; format 2 entries,
// which have neither, still decode. Format 4 is format 3 that may deploy a
// contract with caller rights: a node of a release before rights modes
// would decode such a deploy without its rights (JSON ignores the field)
// and run the contract with the contract's own rights, a silent downgrade;
// it stops on a format 4 entry instead (ErrNewerEntryFormat).
const (
	entryFormat   byte = 4
	entryFormatV3 byte = 3
	entryFormatV2 byte = 2
)

// MaxEntrySize bounds a decoded entry; the proposer never builds a larger one.
const MaxEntrySize = 64 << 20

const (
	tagTx byte = iota + 1
	tagCreateTable
	tagDropTable
	tagSetNode
	tagRemoveNode
	tagJSON
)

// jsonCommands are the command types carried as JSON in the log. A new rare
// command type is added here; a hot one gets its own binary tag.
var jsonCommands = map[CommandType]bool{
	CmdCreateUser: true, CmdUpdateUser: true, CmdDeleteUser: true,
	CmdPutRole: true, CmdDeleteRole: true,
	CmdCreateAPIToken: true, CmdRevokeAPIToken: true,
	CmdAudit:            true,
	CmdCreateJoinToken:  true,
	CmdUseJoinToken:     true,
	CmdDeleteJoinToken:  true,
	CmdDeployContract:   true,
	CmdActivateContract: true,
}

// condKinds are in wire order; format 2 knew only the first three.
var condKinds = []CondKind{CondExists, CondNotExists, CondVersion, CondContract, CondQuery, CondContent}

const condKindsV2 = 3

var opKinds = []OpKind{OpInsert, OpUpsert, OpPatch, OpDelete}

// ErrNewerEntryFormat is DecodeEntry's error for an entry written by a
// newer release. A node must not skip such an entry (it would silently
// diverge from nodes that apply it): it stops until it is upgraded.
var ErrNewerEntryFormat = errors.New("tandem: log entry written by a newer Tandem release")

// EncodeEntry encodes e for the Raft log.
//
// An entry that needs nothing of format 3 (no events, no contract, query
// or content condition) is written in format 2, so that nodes of the
// previous release keep applying the log during a rolling upgrade until
// contracts are used.
func EncodeEntry(e *Entry) ([]byte, error) {
	format := entryFormatV2
	switch {
	case needsFormat4(e.Commands):
		format = entryFormat
	case needsFormat3(e.Commands):
		format = entryFormatV3
	}
	b := make([]byte, 0, 64+estimateCommands(e.Commands))
	b = append(b, format)
	b = binary.AppendVarint(b, e.Time)
	return appendCommands(b, e.Commands, format)
}

// needsFormat4 reports a deploy with caller rights.
func needsFormat4(cmds []Command) bool {
	for i := range cmds {
		if d := cmds[i].Contract; cmds[i].Type == CmdDeployContract && d != nil && d.Rights != RightsContract {
			return true
		}
	}
	return false
}

func needsFormat3(cmds []Command) bool {
	for i := range cmds {
		tx := cmds[i].Tx
		if cmds[i].Type != CmdTx || tx == nil {
			continue
		}
		if len(tx.Events) > 0 {
			return true
		}
		for _, c := range tx.Conditions {
			if indexOf(condKinds, c.Kind) >= condKindsV2 {
				return true
			}
		}
	}
	return false
}

// DecodeEntry decodes a log entry written by EncodeEntry. It never panics,
// whatever the input.
func DecodeEntry(data []byte) (*Entry, error) {
	if len(data) == 0 {
		return nil, errors.New("tandem: empty log entry")
	}
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("tandem: log entry of %d bytes is over the limit", len(data))
	}
	if data[0] > entryFormat {
		return nil, fmt.Errorf("%w (format %d; this binary reads up to %d)", ErrNewerEntryFormat, data[0], entryFormat)
	}
	if data[0] < entryFormatV2 {
		return nil, fmt.Errorf("tandem: unknown log entry format %d", data[0])
	}
	d := decoder{b: data[1:], format: data[0]}
	e := &Entry{Time: d.varint()}
	e.Commands = d.commands()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("tandem: decode log entry: %w", d.err)
	}
	return e, nil
}

// AppendCommands appends the encoding of cmds (the commands part of an
// entry; also the body of a follower's forwarded batch) to b.
func AppendCommands(b []byte, cmds []Command) ([]byte, error) {
	return appendCommands(b, cmds, entryFormat)
}

func appendCommands(b []byte, cmds []Command, format byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for i := range cmds {
		c := &cmds[i]
		switch c.Type {
		case CmdTx:
			if c.Tx == nil {
				return nil, fmt.Errorf("tandem: command %d: tx is nil", i)
			}
			b = append(b, tagTx)
			b = binary.AppendUvarint(b, uint64(len(c.Tx.Conditions)))
			for _, cond := range c.Tx.Conditions {
				k := indexOf(condKinds, cond.Kind)
				if k < 0 {
					return nil, fmt.Errorf("tandem: command %d: unknown condition %q", i, cond.Kind)
				}
				b = append(b, byte(k))
				b = appendString(b, cond.Table)
				b = appendString(b, cond.Key)
				b = binary.AppendUvarint(b, cond.Version)
				if cond.Kind == CondQuery {
					if cond.Query == nil {
						return nil, fmt.Errorf("tandem: command %d: query condition without a query", i)
					}
					js, err := json.Marshal(cond.Query)
					if err != nil {
						return nil, err
					}
					b = appendString(b, string(js))
				}
				if cond.Kind == CondQuery || cond.Kind == CondContent {
					b = appendString(b, cond.Hash)
				}
			}
			b = binary.AppendUvarint(b, uint64(len(c.Tx.Ops)))
			for _, op := range c.Tx.Ops {
				k := indexOf(opKinds, op.Op)
				if k < 0 {
					return nil, fmt.Errorf("tandem: command %d: unknown op %q", i, op.Op)
				}
				b = append(b, byte(k))
				b = appendString(b, op.Table)
				b = appendString(b, op.Key)
				b = appendString(b, string(op.Record))
				if op.IfVersion != nil {
					b = append(b, 1)
					b = binary.AppendUvarint(b, *op.IfVersion)
				} else {
					b = append(b, 0)
				}
			}
			if format == entryFormatV2 {
				continue // needsFormat3 said there is nothing more
			}
			b = binary.AppendUvarint(b, uint64(len(c.Tx.Events)))
			for _, ev := range c.Tx.Events {
				b = appendString(b, ev.Contract)
				b = appendString(b, ev.Topic)
				b = appendString(b, string(ev.Payload))
			}
		case CmdCreateTable:
			if c.Table == nil {
				return nil, fmt.Errorf("tandem: command %d: table is nil", i)
			}
			js, err := json.Marshal(c.Table)
			if err != nil {
				return nil, err
			}
			b = append(b, tagCreateTable)
			b = appendString(b, string(js))
		case CmdDropTable:
			b = append(b, tagDropTable)
			b = appendString(b, c.Name)
		case CmdRemoveNode:
			b = append(b, tagRemoveNode)
			b = appendString(b, c.Name)
		case CmdSetNode:
			if c.Node == nil {
				return nil, fmt.Errorf("tandem: command %d: node is nil", i)
			}
			b = append(b, tagSetNode)
			b = appendString(b, c.Node.ID)
			b = appendString(b, c.Node.HTTPAddr)
			b = appendString(b, c.Node.RaftAddr)
		default:
			if !jsonCommands[c.Type] {
				return nil, fmt.Errorf("tandem: command %d: unknown type %q", i, c.Type)
			}
			js, err := json.Marshal(c)
			if err != nil {
				return nil, err
			}
			b = append(b, tagJSON)
			b = appendString(b, string(js))
		}
	}
	return b, nil
}

// DecodeCommands decodes what AppendCommands wrote, and nothing more.
func DecodeCommands(data []byte) ([]Command, error) {
	d := decoder{b: data, format: entryFormat}
	cmds := d.commands()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("tandem: decode commands: %w", d.err)
	}
	return cmds, nil
}

func estimateCommands(cmds []Command) int {
	n := 0
	for i := range cmds {
		n += 16
		if tx := cmds[i].Tx; tx != nil {
			for _, op := range tx.Ops {
				n += 16 + len(op.Table) + len(op.Key) + len(op.Record)
			}
			n += 32 * len(tx.Conditions)
		}
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func indexOf[T comparable](list []T, v T) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// decoder reads the encoding; the first error sticks and later reads
// return zero values, so callers check d.err once.
type decoder struct {
	b      []byte
	err    error
	format byte // entry format being decoded
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or corrupt %s", what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1(what string) byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns a slice of the input (no copy): decoded entries alias the
// log entry's bytes, which Raft does not reuse.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(what string) string { return string(d.bytes(what)) }

// count reads a list length, refusing lengths the remaining input cannot
// hold (each element takes at least min bytes), so a corrupt length cannot
// make the decoder allocate gigabytes.
func (d *decoder) count(what string, min int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > math.MaxInt32 || int(n)*min > len(d.b) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) commands() []Command {
	n := d.count("command count", 2)
	if d.err != nil {
		return nil
	}
	cmds := make([]Command, n)
	for i := range cmds {
		c := &cmds[i]
		switch d.byte1("command type") {
		case tagTx:
			c.Type = CmdTx
			c.Tx = d.tx()
		case tagCreateTable:
			c.Type = CmdCreateTable
			js := d.bytes("table schema")
			if d.err == nil {
				c.Table = &TableSchema{}
				if err := json.Unmarshal(js, c.Table); err != nil {
					d.err = fmt.Errorf("table schema: %w", err)
				}
			}
		case tagDropTable:
			c.Type, c.Name = CmdDropTable, d.str("table name")
		case tagRemoveNode:
			c.Type, c.Name = CmdRemoveNode, d.str("node id")
		case tagSetNode:
			c.Type = CmdSetNode
			c.Node = &NodeInfo{ID: d.str("node id"), HTTPAddr: d.str("node http address"), RaftAddr: d.str("node raft address")}
		case tagJSON:
			js := d.bytes("command")
			if d.err == nil {
				if err := json.Unmarshal(js, c); err != nil {
					d.err = fmt.Errorf("command: %w", err)
				} else if !jsonCommands[c.Type] {
					d.err = fmt.Errorf("command: type %q cannot be JSON-encoded", c.Type)
				} else if d.format < entryFormat && c.Type == CmdDeployContract && c.Contract != nil && c.Contract.Rights != RightsContract {
					d.err = fmt.Errorf("command: a deploy with rights %q in a format %d entry", c.Contract.Rights, d.format)
				}
			}
		default:
			d.fail("command type")
		}
		if d.err != nil {
			return nil
		}
	}
	return cmds
}

func (d *decoder) tx() *Tx {
	tx := &Tx{}
	if n := d.count("condition count", 4); n > 0 {
		tx.Conditions = make([]Condition, n)
		for i := range tx.Conditions {
			k := d.byte1("condition kind")
			if int(k) >= len(condKinds) || (d.format == entryFormatV2 && k >= condKindsV2) {
				d.fail("condition kind")
				return nil
			}
			c := &tx.Conditions[i]
			*c = Condition{Kind: condKinds[k], Table: d.str("table"), Key: d.str("key"), Version: d.uvarint("version")}
			if c.Kind == CondQuery {
				js := d.bytes("query")
				if d.err != nil {
					return nil
				}
				if c.Query, d.err = decodeQuery(js); d.err != nil {
					return nil
				}
			}
			if c.Kind == CondQuery || c.Kind == CondContent {
				c.Hash = d.str("condition hash")
			}
		}
	}
	n := d.count("op count", 5)
	tx.Ops = make([]Op, n)
	for i := range tx.Ops {
		k := d.byte1("op kind")
		if int(k) >= len(opKinds) {
			d.fail("op kind")
			return nil
		}
		op := &tx.Ops[i]
		op.Op, op.Table, op.Key = opKinds[k], d.str("table"), d.str("key")
		if rec := d.bytes("record"); len(rec) > 0 {
			op.Record = json.RawMessage(rec)
		}
		if d.byte1("if_version flag") == 1 {
			v := d.uvarint("if_version")
			op.IfVersion = &v
		}
	}
	if d.format == entryFormatV2 {
		return tx
	}
	if n := d.count("event count", 3); n > 0 {
		tx.Events = make([]Event, n)
		for i := range tx.Events {
			ev := &tx.Events[i]
			ev.Contract, ev.Topic = d.str("event contract"), d.str("event topic")
			if p := d.bytes("event payload"); len(p) > 0 {
				ev.Payload = json.RawMessage(p)
			}
		}
	}
	return tx
}

// decodeQuery decodes a query condition's JSON into its canonical form
// (decoded, encoded and decoded again), so that an entry that decodes
// re-encodes to the same commands: JSON has several spellings of one Query
// (an empty list or none, for one).
func decodeQuery(js []byte) (*Query, error) {
	var q Query
	if err := json.Unmarshal(js, &q); err != nil {
		return nil, fmt.Errorf("query condition: %w", err)
	}
	canon, err := json.Marshal(&q)
	if err != nil {
		return nil, fmt.Errorf("query condition: %w", err)
	}
	q = Query{}
	if err := json.Unmarshal(canon, &q); err != nil {
		return nil, fmt.Errorf("query condition: %w", err)
	}
	return &q, nil
}
