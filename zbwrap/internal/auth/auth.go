package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Defaults of Config.
const (
	DefaultRefreshAhead = 5 * time.Minute
	DefaultFetchTimeout = 30 * time.Second
)

// Config configures a Source.
type Config struct {
	ClientID     string
	ClientSecret string
	// WorkspaceURL is the workspace (Unity Catalog) URL; tokens come from
	// {WorkspaceURL}/oidc/v1/token.
	WorkspaceURL string
	// Endpoint is the Zerobus endpoint. The first DNS label of its host is
	// the workspace id named in the token's resource.
	Endpoint string
	// HTTPClient makes the token requests. Nil: a client with the default
	// transport. Redirects are never followed (they could carry the
	// credentials elsewhere).
	HTTPClient *http.Client
	// RefreshAhead is how long before expiry a token is replaced, capped at
	// half the token's lifetime. Default 5 minutes.
	RefreshAhead time.Duration
	// FetchTimeout bounds one token request. Default 30 s.
	FetchTimeout time.Duration
	// OnFetch, if set, observes each completed token request: whether a
	// token had been obtained for the table before, and the outcome. It
	// runs on the fetching goroutine before the callers waiting for that
	// token are released, and must return quickly.
	OnFetch func(refresh bool, err error)
}

// Source hands out OAuth tokens downscoped to one table, cached per table.
// One request per table is in flight at a time (single flight): callers that
// need a token while it is being fetched wait for that fetch. Safe for
// concurrent use.
type Source struct {
	cfg         Config
	workspaceID string
	client      *http.Client

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	tables map[string]*entry
}

type entry struct {
	token     string
	expiry    time.Time // zero: unknown
	refreshAt time.Time
	fetched   bool  // a token was obtained before: the next fetch is a refresh
	call      *call // the fetch in flight
}

type call struct {
	done  chan struct{}
	token string
	err   error
}

// New checks cfg and returns a Source. Close it to stop fetches in flight.
func New(cfg Config) (*Source, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("auth: client id and client secret are required")
	}
	if _, err := url.Parse(cfg.WorkspaceURL); err != nil || cfg.WorkspaceURL == "" {
		return nil, fmt.Errorf("auth: workspace URL %q is not a URL", cfg.WorkspaceURL)
	}
	ws, err := WorkspaceID(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.RefreshAhead <= 0 {
		cfg.RefreshAhead = DefaultRefreshAhead
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	client := http.Client{}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Source{cfg: cfg, workspaceID: ws, client: &client, tables: map[string]*entry{}}
	s.life, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// WorkspaceID returns the first DNS label of the endpoint's host (the
// endpoint may omit its scheme). For a loopback endpoint the same rule
// applies: "localhost" for localhost, "127" for 127.0.0.1.
func WorkspaceID(endpoint string) (string, error) {
	e := strings.TrimSpace(endpoint)
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", fmt.Errorf("auth: endpoint %q: %w", endpoint, err)
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("auth: endpoint %q has no host", endpoint)
	}
	label, _, _ := strings.Cut(host, ".")
	if label == "" {
		return "", fmt.Errorf("auth: endpoint host %q has an empty first label", host)
	}
	return label, nil
}

// Resource is the OAuth resource a token is requested for.
func Resource(workspaceID string) string {
	return "api://databricks/workspaces/" + workspaceID + "/zerobusDirectWriteApi"
}

type privilege struct {
	Type           string   `json:"type"`
	Privileges     []string `json:"privileges"`
	ObjectType     string   `json:"object_type"`
	ObjectFullPath string   `json:"object_full_path"`
}

// AuthorizationDetails is the authorization_details JSON that limits a token
// to writing one table: USE CATALOG on its catalog, USE SCHEMA on its schema,
// SELECT and MODIFY on the table.
func AuthorizationDetails(table string) (string, error) {
	parts := strings.Split(table, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", fmt.Errorf("auth: table name %q is not catalog.schema.table", table)
	}
	b, err := json.Marshal([]privilege{
		{"unity_catalog_privileges", []string{"USE CATALOG"}, "CATALOG", parts[0]},
		{"unity_catalog_privileges", []string{"USE SCHEMA"}, "SCHEMA", parts[0] + "." + parts[1]},
		{"unity_catalog_privileges", []string{"SELECT", "MODIFY"}, "TABLE", table},
	})
	return string(b), err
}

// Token returns a valid token for table, fetching one if none is cached or
// the cached one is due for refresh. refresh forces a new token (the server
// rejected the cached one). When a due refresh fails transiently while the
// cached token is still valid, the cached token is returned.
func (s *Source) Token(ctx context.Context, table string, refresh bool) (string, error) {
	s.mu.Lock()
	e := s.tables[table]
	if e == nil {
		e = &entry{}
		s.tables[table] = e
	}
	if !refresh && e.token != "" && time.Now().Before(e.refreshAt) {
		tok := e.token
		s.mu.Unlock()
		return tok, nil
	}
	c := e.call
	if c == nil {
		if s.life.Err() != nil {
			s.mu.Unlock()
			return "", &Error{Msg: "token source closed", Refresh: e.fetched, Err: s.life.Err()}
		}
		c = &call{done: make(chan struct{})}
		e.call = c
		s.wg.Add(1)
		go s.fetch(table, e, c)
	}
	s.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if c.err == nil {
		return c.token, nil
	}
	if !refresh && c.err.(*Error).retryable {
		s.mu.Lock()
		tok, exp := e.token, e.expiry
		s.mu.Unlock()
		if tok != "" && (exp.IsZero() || time.Now().Before(exp)) {
			return tok, nil
		}
	}
	return "", c.err
}

// fetch runs one token request for table and publishes its result.
func (s *Source) fetch(table string, e *entry, c *call) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.life, s.cfg.FetchTimeout)
	defer cancel()
	tok, err := s.mint(ctx, table)
	s.mu.Lock()
	refresh := e.fetched
	if err != nil {
		err.Refresh = e.fetched
		c.err = err
	} else {
		now := time.Now()
		e.token, e.expiry, e.fetched = tok.AccessToken, tok.Expiry, true
		if tok.Expiry.IsZero() {
			e.refreshAt = now // no lifetime given: do not reuse
		} else {
			ahead := min(s.cfg.RefreshAhead, tok.Expiry.Sub(now)/2)
			e.refreshAt = tok.Expiry.Add(-ahead)
		}
		c.token = tok.AccessToken
	}
	e.call = nil
	s.mu.Unlock()
	// Before the waiters wake: a caller that has its token has been
	// observed, and the hooks of successive fetches run in order.
	if s.cfg.OnFetch != nil {
		if err != nil {
			s.cfg.OnFetch(refresh, err)
		} else {
			s.cfg.OnFetch(refresh, nil)
		}
	}
	close(c.done)
}

func (s *Source) mint(ctx context.Context, table string) (*oauth2.Token, *Error) {
	details, err := AuthorizationDetails(table)
	if err != nil {
		return nil, &Error{Msg: "build token request", Err: err}
	}
	cc := clientcredentials.Config{
		ClientID:     s.cfg.ClientID,
		ClientSecret: s.cfg.ClientSecret,
		TokenURL:     strings.TrimRight(s.cfg.WorkspaceURL, "/") + "/oidc/v1/token",
		Scopes:       []string{"all-apis"},
		EndpointParams: url.Values{
			"resource":              {Resource(s.workspaceID)},
			"authorization_details": {details},
		},
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
	if err == nil {
		if tok.AccessToken == "" {
			return nil, &Error{Msg: "token response has no access_token"}
		}
		return tok, nil
	}
	return nil, s.classify(ctx, err)
}

// classify maps a failed token request to an *Error: 4xx answers are final,
// 5xx answers, timeouts and network failures may pass. The client secret is
// scrubbed from any text the server sent back.
func (s *Source) classify(ctx context.Context, err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Msg: "token endpoint refused the request"}
		if re.Response != nil {
			e.Status = re.Response.StatusCode
			e.Msg = fmt.Sprintf("token endpoint answered HTTP %d", e.Status)
			e.retryable = e.Status >= 500
		}
		e.Code = s.scrub(re.ErrorCode)
		e.Description = s.scrub(re.ErrorDescription)
		return e
	}
	if s.life.Err() != nil {
		return &Error{Msg: "token source closed", Err: s.life.Err()}
	}
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Msg: "token request failed", retryable: true, Err: scrubbed{s.scrub(err.Error()), err}}
	}
	return &Error{Msg: "token request failed", Err: scrubbed{s.scrub(err.Error()), err}}
}

func (s *Source) scrub(text string) string {
	if s.cfg.ClientSecret == "" {
		return text
	}
	text = strings.ReplaceAll(text, s.cfg.ClientSecret, "[REDACTED]")
	return strings.ReplaceAll(text, url.QueryEscape(s.cfg.ClientSecret), "[REDACTED]")
}

// scrubbed keeps a cause's identity for errors.Is while printing a
// scrubbed message.
type scrubbed struct {
	msg string
	err error
}

func (e scrubbed) Error() string { return e.msg }
func (e scrubbed) Unwrap() error { return e.err }

// ForTable returns the headers of calls to table: authorization Bearer.
func (s *Source) ForTable(table string) *TableHeaders {
	return &TableHeaders{s: s, table: table}
}

// TableHeaders supplies the authorization header for one table.
type TableHeaders struct {
	s     *Source
	table string
}

// Headers returns {"authorization": "Bearer <token>"}; refresh forces a new
// token.
func (t *TableHeaders) Headers(ctx context.Context, refresh bool) (map[string]string, error) {
	tok, err := t.s.Token(ctx, t.table, refresh)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// Close stops fetches in flight and waits for them.
func (s *Source) Close() {
	s.cancel()
	s.wg.Wait()
}

// Error is a failed token request.
type Error struct {
	// Status is the HTTP status of the answer, 0 when there was none.
	Status int
	// Code and Description are the OAuth error fields of the answer.
	Code, Description string
	// Refresh is true when a token had been obtained before for this table.
	Refresh   bool
	Msg       string
	Err       error
	retryable bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauth: ")
	b.WriteString(e.Msg)
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether a later request may succeed: 5xx answers,
// timeouts and network failures.
func (e *Error) Retryable() bool { return e.retryable }
