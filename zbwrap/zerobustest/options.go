package zerobustest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// An Option configures a Server made by NewServer.
type Option func(*config) error

// config is the resolved set of options.
type config struct {
	tls                 bool
	clients             map[string]string // client id -> secret
	tokenTTL            time.Duration
	autoCreate          bool
	discard             bool
	dataDir             string
	tables              []tableDecl
	materializeInterval time.Duration
	grpcAddr, httpAddr  string
	faults              []Fault
	logger              *slog.Logger
	adminToken          string        // for the admin endpoints
	createTimeout       time.Duration // for create_stream to arrive
	limits              limits        // ack latency and quotas (profile.go)
}

type tableDecl struct {
	name string
	cols []Column
}

func defaultConfig() config {
	return config{
		clients:    map[string]string{},
		tokenTTL:   time.Hour,
		autoCreate: true,
		grpcAddr:   "127.0.0.1:0",
		httpAddr:   "127.0.0.1:0",
		logger:     slog.New(slog.DiscardHandler),
		adminToken: newAdminToken(),
		// The SDKs give up on stream creation after 15s.
		createTimeout: 30 * time.Second,
		limits:        profileLimits(ProfileDefault),
	}
}

// WithTLS serves both listeners over TLS with a certificate signed by a CA
// generated at start (ECDSA P-256, valid for 127.0.0.1, ::1 and localhost).
// Clients trust it through Server.CertPool or Server.CAFile. Default:
// plaintext (h2c for gRPC, HTTP/1.1 for the workspace URL).
func WithTLS() Option {
	return func(c *config) error { c.tls = true; return nil }
}

// WithClient registers an OAuth client (service principal) that may obtain
// tokens from POST /oidc/v1/token. Repeatable. Default: no clients, so only
// Server.Token hands out tokens.
func WithClient(id, secret string) Option {
	return func(c *config) error {
		if id == "" || secret == "" {
			return errors.New("zerobustest: WithClient: client id and secret must not be empty")
		}
		c.clients[id] = secret
		return nil
	}
}

// WithTokenTTL sets how long issued tokens stay valid. Default 1h.
func WithTokenTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("zerobustest: WithTokenTTL: %v is not positive", d)
		}
		c.tokenTTL = d
		return nil
	}
}

// WithAutoCreate sets whether a stream to an unknown table creates it from
// the stream's descriptor. When false such a stream fails with NotFound.
// Default true.
func WithAutoCreate(on bool) Option {
	return func(c *config) error { c.autoCreate = on; return nil }
}

// WithDiscard acknowledges records without decoding or storing them: the
// server still checks the handshake, the table name, tokens, offsets and size
// limits, and injects faults, but nothing reaches a table. This is the mode
// for client benchmarks. Default off (records are stored).
func WithDiscard() Option {
	return func(c *config) error { c.discard = true; return nil }
}

// WithDataDir sets the directory holding the tables (and ca.pem with TLS).
// Default: a temporary directory removed by Close.
func WithDataDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("zerobustest: WithDataDir: empty directory")
		}
		c.dataDir = dir
		return nil
	}
}

// WithTable declares a table (catalog.schema.table) with its columns before
// the server starts. Repeatable. Default: no declared tables.
func WithTable(name string, cols ...Column) Option {
	return func(c *config) error {
		if err := validTableName(name); err != nil {
			return fmt.Errorf("zerobustest: WithTable: %w", err)
		}
		c.tables = append(c.tables, tableDecl{name: name, cols: cols})
		return nil
	}
}

// WithMaterializeInterval sets how long durable records wait before they are
// written to the Delta table. Default 3s (the storage default).
func WithMaterializeInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("zerobustest: WithMaterializeInterval: %v is not positive", d)
		}
		c.materializeInterval = d
		return nil
	}
}

// WithListen sets the listen addresses of the gRPC service and of the HTTP
// workspace server. An empty address keeps its default, "127.0.0.1:0" (an
// ephemeral loopback port).
func WithListen(grpcAddr, httpAddr string) Option {
	return func(c *config) error {
		if grpcAddr != "" {
			c.grpcAddr = grpcAddr
		}
		if httpAddr != "" {
			c.httpAddr = httpAddr
		}
		return nil
	}
}

// WithFault arms a fault from the start. Repeatable. Default: no faults.
func WithFault(f Fault) Option {
	return func(c *config) error {
		if err := f.validate(); err != nil {
			return fmt.Errorf("zerobustest: WithFault: %w", err)
		}
		c.faults = append(c.faults, f)
		return nil
	}
}

// WithAdminToken sets the token the admin endpoints (/admin/...) require
// as "Authorization: Bearer TOKEN": printable ASCII without spaces. Default:
// a random token per server (128 bits), read with Server.AdminToken.
func WithAdminToken(tok string) Option {
	return func(c *config) error {
		if err := validAdminToken(tok); err != nil {
			return fmt.Errorf("zerobustest: WithAdminToken: %w", err)
		}
		c.adminToken = tok
		return nil
	}
}

// WithLogger sets the logger of the server. Secrets (client secrets, tokens)
// are never logged. Default: discard everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.logger = l
		}
		return nil
	}
}
