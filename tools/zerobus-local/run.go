package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"go.yaml.in/yaml/v3"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// adminTokenEnv sets the admin token when --admin-token does not (an
// environment variable does not show in the process list as a flag does).
const adminTokenEnv = "ZEROBUS_LOCAL_ADMIN_TOKEN"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `zerobus-local: a local Zerobus Ingest server.

Usage:
  zerobus-local serve --data-dir DIR --client ID:SECRET [flags]
  zerobus-local show --data-dir DIR catalog.schema.table
  zerobus-local help

serve runs the server until SIGINT or SIGTERM, then acknowledges what is
durable, writes it to the Delta tables and exits 0. When it is ready it prints
one line to stdout:

  zerobus-local ready endpoint=URL workspace_url=URL [ca_file=PATH] admin_token=TOKEN

endpoint is the gRPC ingest endpoint; workspace_url serves POST /oidc/v1/token,
GET|POST /api/2.1/unity-catalog/tables, GET /stats and the admin endpoints
GET|POST|DELETE /admin/faults, POST /admin/tokens/{expire,revoke}. Logs go to
stderr.

The admin endpoints require the header "Authorization: Bearer TOKEN" with the
admin_token of the ready line (401 otherwise), and POST and DELETE also
"Content-Type: application/json" (415 otherwise), so that no web page can arm
a fault. The token is random at each start unless --admin-token or the
environment variable ZEROBUS_LOCAL_ADMIN_TOKEN sets it. serve warns on stderr
when --http-listen is not a loopback address.

show prints the rows landed in a table as JSON lines (run it after the server
materialized them: every few seconds, and at shutdown).

Run "zerobus-local serve --help" for the flags of serve.
`

// run is the command; stop delivers the signals that end serve.
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, stop)
	case "show":
		return show(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "zerobus-local: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// clientsFlag collects --client ID:SECRET; it never prints the secrets.
type clientsFlag struct{ ids, secrets []string }

func (c *clientsFlag) String() string { return strings.Join(c.ids, ",") }

func (c *clientsFlag) Set(v string) error {
	id, secret, ok := strings.Cut(v, ":")
	if !ok || id == "" || secret == "" {
		return errors.New("want ID:SECRET")
	}
	c.ids, c.secrets = append(c.ids, id), append(c.secrets, secret)
	return nil
}

// faultsFlag collects --fault SPEC.
type faultsFlag []zerobustest.Fault

func (f *faultsFlag) String() string { return fmt.Sprint(len(*f), " faults") }

func (f *faultsFlag) Set(v string) error {
	fault, err := zerobustest.ParseFault(v)
	if err != nil {
		return err
	}
	*f = append(*f, fault)
	return nil
}

func serve(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		clients  clientsFlag
		faults   faultsFlag
		listen   = fs.String("listen", "127.0.0.1:0", "gRPC listen `address` (port 0: any free port)")
		httpAddr = fs.String("http-listen", "127.0.0.1:0", "workspace URL (HTTP) listen `address`")
		dataDir  = fs.String("data-dir", "", "`directory` of the tables and of ca.pem (required unless --discard)")
		useTLS   = fs.Bool("tls", false, "serve both listeners over TLS with a CA generated at start (written to DIR/ca.pem)")
		ttl      = fs.Duration("token-ttl", time.Hour, "lifetime of issued tokens")
		noAuto   = fs.Bool("no-auto-create", false, "refuse streams to unknown tables (NotFound) instead of creating them")
		discard  = fs.Bool("discard", false, "acknowledge records without decoding or storing them (benchmark sink; the\n"+
			"profile's latency and quotas still apply)")
		tables   = fs.String("tables", "", "YAML `file` declaring tables: table name -> list of {name, type, nullable (default true)}")
		interval = fs.Duration("materialize-interval", 3*time.Second, "how long durable records wait before they are written to the Delta table")
		level    = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
		grace    = fs.Duration("shutdown-timeout", 30*time.Second, "how long open calls get to finish at shutdown")
		admin    = fs.String("admin-token", "", "`token` the admin endpoints require as Authorization: Bearer TOKEN (printable\n"+
			"ASCII, no spaces). Default: $"+adminTokenEnv+", else random at each start.\n"+
			"Printed as admin_token= in the ready line")
	)
	prof := addProfileFlags(fs)
	fs.Var(&clients, "client", "OAuth client `ID:SECRET` allowed to get tokens (repeatable, at least one)")
	fs.Var(&faults, "fault", "fault to inject, as `key=value,...` with keys kind, table, times, after_records, code,\n"+
		"message, signal, signal_duration, delay (repeatable). Kinds: fail_create_stream, end_call,\n"+
		"fail_call, delay_acks, stop_acks, expire_tokens, revoke_tokens, drop_connection.\n"+
		"Example: --fault kind=end_call,after=1000,signal=true,signal_duration=2s")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: zerobus-local serve --data-dir DIR --client ID:SECRET [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, tablesHelp)
		fmt.Fprint(stderr, profileHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "zerobus-local serve: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *dataDir == "" && !*discard:
		return usageErr("--data-dir is required (unless --discard)")
	case len(clients.ids) == 0:
		return usageErr("at least one --client ID:SECRET is required")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageErr("--log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	opts := []zerobustest.Option{
		zerobustest.WithListen(*listen, *httpAddr),
		zerobustest.WithTokenTTL(*ttl),
		zerobustest.WithAutoCreate(!*noAuto),
		zerobustest.WithMaterializeInterval(*interval),
		zerobustest.WithLogger(logger),
	}
	popts, err := prof.options()
	if err != nil {
		return usageErr("%v", err)
	}
	opts = append(opts, popts...)
	if *admin == "" {
		*admin = os.Getenv(adminTokenEnv)
	}
	if *admin != "" {
		opts = append(opts, zerobustest.WithAdminToken(*admin))
	}
	if *dataDir != "" {
		opts = append(opts, zerobustest.WithDataDir(*dataDir))
	}
	if *useTLS {
		opts = append(opts, zerobustest.WithTLS())
	}
	if *discard {
		opts = append(opts, zerobustest.WithDiscard())
	}
	for i, id := range clients.ids {
		opts = append(opts, zerobustest.WithClient(id, clients.secrets[i]))
	}
	for _, f := range faults {
		opts = append(opts, zerobustest.WithFault(f))
	}
	if *tables != "" {
		decl, err := loadTables(*tables)
		if err != nil {
			return usageErr("--tables: %v", err)
		}
		opts = append(opts, decl...)
	}

	srv, err := zerobustest.NewServer(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "zerobus-local serve: %v\n", err)
		return exitError
	}
	ready := fmt.Sprintf("zerobus-local ready endpoint=%s workspace_url=%s", srv.Endpoint(), srv.WorkspaceURL())
	if srv.CAFile() != "" {
		ready += " ca_file=" + srv.CAFile()
	}
	ready += " admin_token=" + srv.AdminToken() // last: parsers of the older line keep working
	fmt.Fprintln(stdout, ready)

	sig := <-stop
	logger.Info("shutting down", "signal", sig.String())
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Error("shutdown failed", "error", err)
		return exitError
	}
	return exitOK
}

const tablesHelp = `
A --tables file maps each table to its columns (types are Spark SQL text;
columns are nullable unless they say nullable: false):

  main.default.events:
    - {name: id, type: bigint, nullable: false}
    - {name: name, type: string}
    - {name: tags, type: "array<string>", nullable: false}
    - {name: payload, type: "struct<a:int, b:map<string,double> not null>"}
`

// tableColumn is a column in the --tables file.
type tableColumn struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`
	Nullable *bool  `yaml:"nullable"`
}

// loadTables reads the --tables file: a mapping from table name to its
// columns.
func loadTables(path string) ([]zerobustest.Option, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var decl map[string][]tableColumn
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&decl); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	names := make([]string, 0, len(decl))
	for n := range decl {
		names = append(names, n)
	}
	sort.Strings(names)
	var opts []zerobustest.Option
	for _, n := range names {
		cols := make([]zerobustest.Column, len(decl[n]))
		for i, c := range decl[n] {
			if c.Name == "" || c.Type == "" {
				return nil, fmt.Errorf("%s: table %s: column %d needs a name and a type", path, n, i+1)
			}
			cols[i] = zerobustest.Column{Name: c.Name, Type: c.Type, Nullable: c.Nullable == nil || *c.Nullable}
		}
		opts = append(opts, zerobustest.WithTable(n, cols...))
	}
	return opts, nil
}

func show(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "`directory` of the tables (required)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: zerobus-local show --data-dir DIR catalog.schema.table\n\nPrints the rows of the table's Delta table as JSON lines.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *dataDir == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "zerobus-local show: want --data-dir DIR and one catalog.schema.table")
		return exitUsage
	}
	tbl, err := zerobustest.ReadTable(*dataDir, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "zerobus-local show: %v\n", err)
		return exitError
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 4096)
	defer tr.Release()
	for tr.Next() {
		if err := array.RecordToJSON(tr.RecordBatch(), stdout); err != nil {
			fmt.Fprintf(stderr, "zerobus-local show: %v\n", err)
			return exitError
		}
	}
	return exitOK
}
