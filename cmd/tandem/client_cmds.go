package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// defaultAddr is where client commands look for a node when neither --addr
// nor TANDEM_ADDR says otherwise: https with --ca-file, else http.
const defaultAddr = "127.0.0.1:7001"

// addClientCommands adds the commands that talk to a running cluster over
// the HTTP API. Each has the flags --addr and --timeout.
func addClientCommands(root *cobra.Command) {
	root.AddCommand(
		newStatusCmd(),
		newTableCmd(),
		newPutCmd(),
		newInsertCmd(),
		newPatchCmd(),
		newGetCmd(),
		newDeleteCmd(),
		newQueryCmd(),
		newTxCmd(),
		newNodeCmd(),
		newContractCmd(),
	)
	addAuthCommands(root) // auth_cmds.go
}

// envAddrs returns the node addresses from TANDEM_ADDR, or the default.
func envAddrs() string {
	if a := os.Getenv("TANDEM_ADDR"); a != "" {
		return a
	}
	return defaultAddr
}

// clientFlags are the connection flags of a client command.
type clientFlags struct {
	addr    string
	timeout time.Duration
	creds   credFlags // auth_cmds.go
	caFile  string    // pki_cmds.go
}

// register adds the flags to cmd and, being persistent, to its subcommands.
func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.addr, "addr", envAddrs(), "node base URL, or a comma-separated list to spread calls over (env TANDEM_ADDR)")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on a call after this long")
	f.creds.register(cmd)
	f.registerTLS(cmd)
}

// run adapts fn to a cobra RunE: it connects a client and makes an API
// error read as the server's code and message.
func (f *clientFlags) run(fn func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := client.New(splitList(f.addr), f.options()...)
		if err != nil {
			return err
		}
		return cliError(tlsHint(fn(cmd, c, args)))
	}
}

// cliErr drops the "tandem: " that an API error's text starts with, since
// main prints one before every error: the user sees "tandem: conflict:
// record accounts/bob exists".
type cliErr struct {
	err error
	msg string
}

func (e cliErr) Error() string { return e.msg }

func (e cliErr) Unwrap() error { return e.err }

func cliError(err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	short := string(e.Code) + ": " + e.Message
	return cliErr{err: err, msg: strings.Replace(err.Error(), e.Error(), short, 1)}
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printRaw prints a JSON document indented.
func printRaw(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// jsonArg returns a JSON argument, read from stdin when it is "-".
func jsonArg(cmd *cobra.Command, arg, what string) (json.RawMessage, error) {
	b := []byte(arg)
	if arg == "-" {
		var err error
		if b, err = io.ReadAll(cmd.InOrStdin()); err != nil {
			return nil, fmt.Errorf("read %s from stdin: %w", what, err)
		}
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON: %.60s", what, b)
	}
	return b, nil
}

func newStatusCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes, their roles and applied indexes",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			st, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the full status as JSON")
	return cmd
}

func printStatus(w io.Writer, st *client.ClusterStatus) error {
	withErrors := slices.ContainsFunc(st.Nodes, func(n tandem.NodeStatus) bool { return n.Error != "" })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "ID\tHTTP\tRAFT\tVOTER\tLEADER\tSTATE\tAPPLIED\tLEDGER"
	if withErrors {
		header += "\tERROR"
	}
	fmt.Fprintln(tw, header)
	for _, n := range st.Nodes {
		hash := n.LedgerHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", n.ID, n.HTTPAddr, n.RaftAddr, yesNo(n.Voter), yesNo(n.Leader), n.State, n.AppliedIndex, hash)
		if withErrors {
			fmt.Fprintf(tw, "\t%s", n.Error)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newTableCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Create, list, show and drop tables",
	}
	f.register(cmd)

	var pk string
	var attrs, indexes []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a table, or replace its schema to add attributes and indexes",
		Long: `Create a table, or change an existing one. The flags give the whole schema,
as PUT /v1/tables/{table} does: to add an attribute or an index, list every
declared attribute and index again. An index left out is dropped; a declared
attribute left out is refused (conflict). To change a table by difference,
use "tandem table alter".`,
		Example: "  tandem table create accounts --pk id --attr name:string --attr balance:int --index balance",
		Args:    cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			schema := tandem.TableSchema{Name: args[0], PrimaryKey: pk, Indexes: indexes}
			if err := addAttrFlags(&schema, attrs); err != nil {
				return err
			}
			got, _, err := c.CreateTable(cmd.Context(), schema)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), got)
		}),
	}
	create.Flags().StringVar(&pk, "pk", "", `primary key attribute (server default "id")`)
	create.Flags().StringSliceVar(&attrs, "attr", nil, "declared attribute NAME:TYPE (repeatable)")
	create.Flags().StringSliceVar(&indexes, "index", nil, "indexed attribute (repeatable)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tables",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			tables, err := c.Tables(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tables)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIMARY KEY\tATTRIBUTES\tINDEXES\tVERSION")
			for _, t := range tables {
				var as []string
				for name, typ := range t.Attributes {
					as = append(as, name+":"+string(typ))
				}
				slices.Sort(as)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", t.Name, t.PrimaryKey, strings.Join(as, ","), strings.Join(t.Indexes, ","), t.Version)
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print the schemas as JSON")

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a table's schema",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			t, err := c.Table(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), t)
		}),
	}

	drop := &cobra.Command{
		Use:   "drop NAME",
		Short: "Drop a table and every record in it",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			index, err := c.DropTable(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"deleted": args[0], "index": index})
		}),
	}
	var addAttrs, addIndexes, dropIndexes []string
	alter := &cobra.Command{
		Use:   "alter NAME",
		Short: "Add attributes and indexes to a table, or drop indexes, keeping the rest",
		Long: `Change a table's schema by difference: the current schema is read, the
given attributes and indexes are added and --drop-index ones removed, and
the result is sent back. New indexes are built from the existing records.`,
		Example: "  tandem table alter accounts --attr joined:time --index joined --drop-index owner",
		Args:    cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			schema, err := c.Table(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := addAttrFlags(schema, addAttrs); err != nil {
				return err
			}
			for _, ix := range addIndexes {
				if !slices.Contains(schema.Indexes, ix) {
					schema.Indexes = append(schema.Indexes, ix)
				}
			}
			for _, ix := range dropIndexes {
				i := slices.Index(schema.Indexes, ix)
				if i < 0 {
					return fmt.Errorf("--drop-index %q: table %s has no such index (it has %v)", ix, args[0], schema.Indexes)
				}
				schema.Indexes = slices.Delete(schema.Indexes, i, i+1)
			}
			got, _, err := c.CreateTable(cmd.Context(), *schema)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), got)
		}),
	}
	alter.Flags().StringSliceVar(&addAttrs, "attr", nil, "attribute NAME:TYPE to declare (repeatable)")
	alter.Flags().StringSliceVar(&addIndexes, "index", nil, "attribute to index (repeatable)")
	alter.Flags().StringSliceVar(&dropIndexes, "drop-index", nil, "index to drop (repeatable)")

	cmd.AddCommand(create, alter, list, get, drop)
	return cmd
}

// addAttrFlags declares the NAME:TYPE attributes of --attr flags in schema.
func addAttrFlags(schema *tandem.TableSchema, attrs []string) error {
	for _, a := range attrs {
		name, typ, ok := strings.Cut(a, ":")
		if !ok || name == "" || !tandem.AttrType(typ).Valid() {
			return fmt.Errorf("--attr %q: want NAME:TYPE with TYPE one of string, int, float, bool, time, json", a)
		}
		if schema.Attributes == nil {
			schema.Attributes = make(map[string]tandem.AttrType)
		}
		schema.Attributes[name] = tandem.AttrType(typ)
	}
	return nil
}

// writeFlags are the conditions a record write may carry.
type writeFlags struct{ ifMatch uint64 }

func (wf *writeFlags) register(cmd *cobra.Command) {
	cmd.Flags().Uint64Var(&wf.ifMatch, "if-match", 0, "apply only if the record is at this version")
}

func (wf *writeFlags) options(cmd *cobra.Command) []client.WriteOption {
	if cmd.Flags().Changed("if-match") {
		return []client.WriteOption{client.IfMatch(wf.ifMatch)}
	}
	return nil
}

func newPutCmd() *cobra.Command {
	var f clientFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:     "put TABLE KEY JSON|-",
		Short:   "Create or replace a record (upsert)",
		Example: `  tandem put accounts alice '{"name": "Alice", "balance": 10}' --if-match 12`,
		Args:    cobra.ExactArgs(3),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			rec, err := jsonArg(cmd, args[2], "record")
			if err != nil {
				return err
			}
			res, err := c.Put(cmd.Context(), args[0], args[1], rec, wf.options(cmd)...)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		}),
	}
	f.register(cmd)
	wf.register(cmd)
	return cmd
}

func newInsertCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "insert TABLE JSON|-",
		Short:   "Create a record; fails if its key exists",
		Example: `  tandem insert accounts '{"id": "bob", "balance": 0}'`,
		Args:    cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			rec, err := jsonArg(cmd, args[1], "record")
			if err != nil {
				return err
			}
			res, err := c.Insert(cmd.Context(), args[0], rec)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		}),
	}
	f.register(cmd)
	return cmd
}

func newPatchCmd() *cobra.Command {
	var f clientFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:     "patch TABLE KEY JSON|-",
		Short:   "Merge attributes into a record (null removes one)",
		Example: `  tandem patch accounts alice '{"balance": 40, "note": null}'`,
		Args:    cobra.ExactArgs(3),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			rec, err := jsonArg(cmd, args[2], "patch")
			if err != nil {
				return err
			}
			res, err := c.Patch(cmd.Context(), args[0], args[1], rec, wf.options(cmd)...)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		}),
	}
	f.register(cmd)
	wf.register(cmd)
	return cmd
}

func newDeleteCmd() *cobra.Command {
	var f clientFlags
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "delete TABLE KEY",
		Short: "Delete a record",
		Args:  cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.Delete(cmd.Context(), args[0], args[1], wf.options(cmd)...)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"key": res.Key, "deleted": true, "index": res.Index})
		}),
	}
	f.register(cmd)
	wf.register(cmd)
	return cmd
}

// readFlags choose the consistency of a read.
type readFlags struct {
	consistency string
	minIndex    uint64
}

func (rf *readFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&rf.consistency, "consistency", "", "local or linearizable (the server's default)")
	cmd.Flags().Uint64Var(&rf.minIndex, "min-index", 0, "read once the node has applied this index (read your writes)")
}

func (rf *readFlags) options() ([]client.ReadOption, error) {
	var opts []client.ReadOption
	switch tandem.Consistency(rf.consistency) {
	case "":
	case tandem.ReadLocal:
		opts = append(opts, client.Local())
	case tandem.ReadLinearizable:
		opts = append(opts, client.Linearizable())
	default:
		return nil, fmt.Errorf("--consistency %q: want local or linearizable", rf.consistency)
	}
	if rf.minIndex > 0 {
		opts = append(opts, client.MinIndex(rf.minIndex))
	}
	return opts, nil
}

func newGetCmd() *cobra.Command {
	var f clientFlags
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "get TABLE KEY",
		Short: "Read a record",
		Args:  cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			opts, err := rf.options()
			if err != nil {
				return err
			}
			rec, err := c.Get(cmd.Context(), args[0], args[1], opts...)
			if err != nil {
				return err
			}
			return printRaw(cmd.OutOrStdout(), rec.JSON)
		}),
	}
	f.register(cmd)
	rf.register(cmd)
	return cmd
}

func newQueryCmd() *cobra.Command {
	var f clientFlags
	var rf readFlags
	var sort, sel, cursor string
	var limit int
	var count, all bool
	cmd := &cobra.Command{
		Use:   "query TABLE [ATTR=[OP.]VALUE ...]",
		Short: "Find records by filters, in the syntax of the HTTP API",
		Long: `Find records. Each filter is ATTR=VALUE or ATTR=OP.VALUE with OP one of
eq, ne, gt, ge, lt, le, prefix, in; several filters are ANDed, and
or=(a.op.v,b.op.v) adds an OR group. See docs/api.md.`,
		Example: "  tandem query accounts balance=gt.10 --sort -balance --limit 5 --select name,balance\n" +
			"  tandem query accounts status=in.(open,held) --count",
		Args: cobra.MinimumNArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			opts, err := rf.options()
			if err != nil {
				return err
			}
			params := url.Values{}
			for _, a := range args[1:] {
				attr, value, ok := strings.Cut(a, "=")
				if !ok || attr == "" {
					return fmt.Errorf("filter %q: want ATTR=VALUE or ATTR=OP.VALUE", a)
				}
				params.Add(attr, value)
			}
			set := func(name, value string) {
				if value != "" {
					params.Set(name, value)
				}
			}
			set("sort", sort)
			set("select", sel)
			set("cursor", cursor)
			if limit > 0 {
				params.Set("limit", strconv.Itoa(limit))
			}
			if count {
				params.Set("count", "true")
			}
			out := cmd.OutOrStdout()
			if count || !all {
				res, err := c.Query(cmd.Context(), args[0], params, opts...)
				if err != nil {
					return err
				}
				if count {
					return printJSON(out, map[string]any{"count": res.Count})
				}
				if res.Records == nil {
					res.Records = []json.RawMessage{}
				}
				return printJSON(out, res)
			}
			merged := tandem.QueryResult{Records: []json.RawMessage{}}
			for page, err := range c.QueryPages(cmd.Context(), args[0], params, opts...) {
				if err != nil {
					return err
				}
				merged.Records = append(merged.Records, page.Records...)
				merged.Plan = page.Plan
			}
			return printJSON(out, merged)
		}),
	}
	f.register(cmd)
	rf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&sort, "sort", "", "attribute to order by; -attr for descending")
	fl.IntVar(&limit, "limit", 0, "records per page (server default 100, max 10000)")
	fl.StringVar(&sel, "select", "", "comma-separated attributes to return")
	fl.StringVar(&cursor, "cursor", "", `start at this cursor (the "next" of a previous page)`)
	fl.BoolVar(&count, "count", false, "print only the number of matching records")
	fl.BoolVar(&all, "all", false, "follow the cursors and print every matching record")
	return cmd
}

func newTxCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "tx FILE|-",
		Short: "Run a transaction given as JSON (see docs/api.md)",
		Example: `  echo '{"ops": [{"op": "patch", "table": "accounts", "key": "alice", "record": {"balance": 40}}]}' | tandem tx -` +
			"\n  tandem tx transfer.json",
		Args: cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var r io.Reader
			if args[0] == "-" {
				r = cmd.InOrStdin()
			} else {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			// Unknown fields are refused: a misspelt "conditions" would
			// otherwise drop the conditions silently.
			dec := json.NewDecoder(r)
			dec.DisallowUnknownFields()
			var tx tandem.Tx
			if err := dec.Decode(&tx); err != nil {
				return fmt.Errorf("transaction %s: %w", args[0], err)
			}
			index, err := c.Tx(cmd.Context(), tx)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]uint64{"index": index})
		}),
	}
	f.register(cmd)
	return cmd
}

func newNodeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage cluster membership",
	}
	f.register(cmd)
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]string{"removed": args[0]})
		}),
	}
	cmd.AddCommand(remove)
	return cmd
}
