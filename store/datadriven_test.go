package store_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/query"
	"github.com/tandemdb/tandem/store"
)

// TestDataDriven runs the scripts in testdata/apply and testdata/query.
// Run with -rewrite to regenerate the expected output. Commands:
//
//	apply                    input lines "<index> <kind> [payload]"; kind is
//	                         tx, create_table, drop_table, set_node,
//	                         remove_node (JSON or name payload), a
//	                         security command (create_user ... audit: the
//	                         command's JSON, or a name), config (an
//	                         entry without data) or garbage (undecodable
//	                         data). Lines with the same index form one entry;
//	                         all entries go to one Apply call.
//	tx index=N               input: one transaction as JSON
//	create-table index=N     input: the schema as JSON
//	drop-table index=N name=T
//	get table=T key=K
//	query table=T [pages]    input: a query string; with pages, follow the
//	                         cursor and check the pages against one big query
//	state | tables | nodes | dump
//	security                 users, stored roles and API tokens
//	audit [principal=P] [limit=N]  audit entries, following cursors
//	                         deploy_contract and activate_contract too
//	                         (see parseCommand for their payloads)
//	state | tables | nodes | dump | contracts
//	code name=C version=N    a contract version's module bytes
//	events after=N limit=M
//	restart                  close and reopen the store
//	snapshot-restore         snapshot, restore into a fresh store, compare,
//	                         and continue with the fresh store
func TestDataDriven(t *testing.T) {
	for _, dir := range []string{"testdata/apply", "testdata/query"} {
		datadriven.Walk(t, dir, func(t *testing.T, path string) {
			h := newHarness(t)
			defer h.close()
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return h.run(t, d)
			})
		})
	}
}

type harness struct {
	t   *testing.T
	dir string
	s   *store.Store
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	h.s = openStore(t, h.dir)
	return h
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir, CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) close() {
	if err := h.s.Close(); err != nil {
		h.t.Error(err)
	}
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "apply":
		return h.apply(t, d.Input)
	case "tx":
		return h.apply(t, fmt.Sprintf("%d tx %s", argInt(t, d, "index"), oneLine(d.Input)))
	case "create-table":
		return h.apply(t, fmt.Sprintf("%d create_table %s", argInt(t, d, "index"), oneLine(d.Input)))
	case "drop-table":
		return h.apply(t, fmt.Sprintf("%d drop_table %s", argInt(t, d, "index"), argStr(t, d, "name")))
	case "get":
		rd, err := h.s.Get(argStr(t, d, "table"), argStr(t, d, "key"))
		if err != nil {
			return errString(err)
		}
		return fmt.Sprintf("v%d %s", rd.Version, rd.JSON)
	case "query":
		return h.query(t, d)
	case "state":
		return stateString(h.s)
	case "tables":
		var sb strings.Builder
		for _, sc := range h.s.Tables() {
			b, _ := json.Marshal(sc)
			fmt.Fprintf(&sb, "%s\n", b)
		}
		return sb.String()
	case "nodes":
		var sb strings.Builder
		for _, n := range h.s.Nodes() {
			b, _ := json.Marshal(n)
			fmt.Fprintf(&sb, "%s\n", b)
		}
		return sb.String()
	case "dump":
		return store.Dump(h.s)
	case "security":
		return securityString(h.s)
	case "audit":
		var q tandem.AuditQuery
		if d.HasArg("principal") {
			q.Principal = argStr(t, d, "principal")
		}
		if d.HasArg("limit") {
			q.Limit = argInt(t, d, "limit")
		}
		var sb strings.Builder
		for page := 1; page < 100; page++ {
			p, err := h.s.Audit(q)
			if err != nil {
				return errString(err)
			}
			for _, e := range p.Entries {
				b, _ := json.Marshal(e)
				fmt.Fprintf(&sb, "%d: %s\n", page, b)
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		return sb.String()
	case "contracts":
		cs, err := h.s.Contracts()
		if err != nil {
			return errString(err)
		}
		var sb strings.Builder
		for _, c := range cs {
			b, _ := json.Marshal(c)
			fmt.Fprintf(&sb, "%s\n", b)
		}
		return sb.String()
	case "code":
		var version int
		d.ScanArgs(t, "version", &version)
		code, err := h.s.ContractCode(argStr(t, d, "name"), uint64(version))
		if err != nil {
			return errString(err)
		}
		return string(code) + "\n"
	case "events":
		evs, err := h.s.Events(uint64(argInt(t, d, "after")), argInt(t, d, "limit"))
		if err != nil {
			return errString(err)
		}
		var sb strings.Builder
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(&sb, "%s\n", b)
		}
		return sb.String()
	case "restart":
		h.close()
		h.s = openStore(t, h.dir)
		return stateString(h.s)
	case "snapshot-restore":
		return h.snapshotRestore(t)
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

func (h *harness) apply(t *testing.T, input string) string {
	var entries []store.LogEntry
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		fields := strings.SplitN(strings.TrimSpace(line), " ", 3)
		if len(fields) < 2 {
			t.Fatalf("bad apply line %q", line)
		}
		index, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			t.Fatalf("bad index in %q", line)
		}
		payload := ""
		if len(fields) == 3 {
			payload = fields[2]
		}
		if n := len(entries); n == 0 || entries[n-1].Index != index {
			entries = append(entries, store.LogEntry{Index: index})
		}
		e := &entries[len(entries)-1]
		switch fields[1] {
		case "config":
			continue
		case "garbage":
			e.Data = []byte("\x02garbage") // format 2, but not a valid entry
			continue
		}
		if e.Entry == nil {
			e.Entry = &tandem.Entry{}
		}
		e.Entry.Commands = append(e.Entry.Commands, parseCommand(t, fields[1], payload))
	}
	for i := range entries {
		e := &entries[i]
		if e.Entry != nil {
			data, err := tandem.EncodeEntry(e.Entry)
			if err != nil {
				t.Fatal(err)
			}
			e.Data = data
		}
	}
	results, err := h.s.Apply(entries)
	if err != nil {
		return "fatal: " + err.Error()
	}
	var sb strings.Builder
	for i, res := range results {
		fmt.Fprintf(&sb, "%d:", entries[i].Index)
		switch {
		case res == nil:
			sb.WriteString(" skipped")
		case len(res) == 0:
			sb.WriteString(" no commands")
		}
		for _, r := range res {
			if r.Index != entries[i].Index {
				t.Errorf("result index %d, want %d", r.Index, entries[i].Index)
			}
			if r.Err == nil {
				sb.WriteString("\n  ok")
			} else {
				sb.WriteString("\n  " + errString(r.Err))
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func parseCommand(t *testing.T, kind, payload string) tandem.Command {
	c := tandem.Command{Type: tandem.CommandType(kind)}
	var err error
	switch c.Type {
	case tandem.CmdTx:
		err = json.Unmarshal([]byte(payload), &c.Tx)
	case tandem.CmdCreateTable:
		err = json.Unmarshal([]byte(payload), &c.Table)
	case tandem.CmdSetNode:
		err = json.Unmarshal([]byte(payload), &c.Node)
	case tandem.CmdDropTable, tandem.CmdRemoveNode, tandem.CmdDeleteUser, tandem.CmdDeleteRole, tandem.CmdRevokeAPIToken:
		c.Name = payload
	case tandem.CmdCreateUser, tandem.CmdUpdateUser, tandem.CmdPutRole, tandem.CmdCreateAPIToken, tandem.CmdAudit:
		// The payload is the command's JSON without its type.
		err = json.Unmarshal([]byte(payload), &c)
		c.Type = tandem.CommandType(kind)
	case tandem.CmdDeployContract:
		// {"name", "code" (the module as text), "functions", optional
		// "sha256" (default: the code's hash)}
		var d struct {
			Name      string                    `json:"name"`
			Code      string                    `json:"code"`
			SHA256    string                    `json:"sha256"`
			Functions []tandem.ContractFunction `json:"functions"`
		}
		if err = json.Unmarshal([]byte(payload), &d); err == nil {
			if d.SHA256 == "" {
				d.SHA256 = tandem.WasmSHA256([]byte(d.Code))
			}
			c.Contract = &tandem.ContractDeploy{Name: d.Name, Wasm: []byte(d.Code), SHA256: d.SHA256, Functions: d.Functions}
		}
	case tandem.CmdActivateContract:
		// "<name> <version>"
		_, err = fmt.Sscanf(payload, "%s %d", &c.Name, &c.Version)
	default:
		t.Fatalf("unknown command kind %q", kind)
	}
	if err != nil {
		t.Fatalf("%s payload %q: %v", kind, payload, err)
	}
	return c
}

func (h *harness) query(t *testing.T, d *datadriven.TestData) string {
	q := parseQuery(t, argStr(t, d, "table"), d.Input)
	if !d.HasArg("pages") {
		res, err := h.s.Query(q)
		if err != nil {
			return errString(err)
		}
		return resultString(res)
	}
	var sb strings.Builder
	var all []json.RawMessage
	for page := 1; ; page++ {
		res, err := h.s.Query(q)
		if err != nil {
			fmt.Fprintf(&sb, "page %d: %s\n", page, errString(err))
			return sb.String()
		}
		fmt.Fprintf(&sb, "page %d: %s", page, resultString(res))
		all = append(all, res.Records...)
		if res.Next == "" {
			break
		}
		q.Cursor = res.Next
		if page > 100 {
			t.Fatal("too many pages")
		}
	}
	// The pages together must equal one unpaginated query.
	q.Cursor, q.Limit = "", tandem.MaxLimit
	res, err := h.s.Query(q)
	if err != nil {
		t.Fatalf("unpaginated query: %v", err)
	}
	if got, want := joinRecords(all), joinRecords(res.Records); got != want {
		t.Errorf("%s: pages differ from the unpaginated result:\npages:\n%s\nunpaginated:\n%s", d.Pos, got, want)
	}
	return sb.String()
}

func parseQuery(t testing.TB, table, raw string) *tandem.Query {
	t.Helper()
	v, err := url.ParseQuery(strings.TrimSpace(raw))
	if err != nil {
		t.Fatal(err)
	}
	q, err := query.Parse(table, v)
	if err != nil {
		t.Fatalf("query.Parse(%q): %v", raw, err)
	}
	return q
}

func resultString(res *tandem.QueryResult) string {
	var sb strings.Builder
	sb.WriteString(res.Plan)
	if res.Count != nil {
		fmt.Fprintf(&sb, " count=%d", *res.Count)
	}
	if res.Next != "" {
		sb.WriteString(" (more)")
	}
	sb.WriteByte('\n')
	sb.WriteString(joinRecords(res.Records))
	return sb.String()
}

func joinRecords(recs []json.RawMessage) string {
	var sb strings.Builder
	for _, r := range recs {
		sb.Write(r)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func (h *harness) snapshotRestore(t *testing.T) string {
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer has %d bytes)", n, err, buf.Len())
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	fresh := openStore(t, dir)
	if err := fresh.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if fresh.Dirty() {
		t.Fatal("restored store is dirty")
	}
	if got, want := store.Dump(fresh), store.Dump(h.s); got != want {
		t.Errorf("restored store differs:\n%s\nwant:\n%s", got, want)
	}
	if got, want := stateString(fresh), stateString(h.s); got != want {
		t.Errorf("restored state %s, want %s", got, want)
	}
	h.close()
	h.s, h.dir = fresh, dir
	return fmt.Sprintf("snapshot at %d restored\n%s", snap.Index(), stateString(fresh))
}

func stateString(s *store.Store) string {
	applied, hash := s.State()
	return fmt.Sprintf("applied=%d hash=%s dirty=%t\n", applied, hex.EncodeToString(hash[:4]), s.Dirty())
}

func errString(err error) string {
	return fmt.Sprintf("%s: %s", tandem.ErrorCode(err), tandem.ErrorMessage(err))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func argInt(t *testing.T, d *datadriven.TestData, key string) int {
	var v int
	d.ScanArgs(t, key, &v)
	return v
}

func argStr(t *testing.T, d *datadriven.TestData, key string) string {
	var v string
	d.ScanArgs(t, key, &v)
	return v
}

func securityString(s *store.Store) string {
	var sb strings.Builder
	for _, u := range s.Users() {
		b, _ := json.Marshal(u)
		fmt.Fprintf(&sb, "user %s\n", b)
	}
	for _, r := range s.Roles() {
		b, _ := json.Marshal(r)
		fmt.Fprintf(&sb, "role %s\n", b)
	}
	for _, t := range s.APITokens() {
		b, _ := json.Marshal(t)
		fmt.Fprintf(&sb, "token %s\n", b)
	}
	return sb.String()
}
