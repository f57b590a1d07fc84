package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const (
	testTable  = "main.default.events"
	testID     = "sp-client"
	testSecret = "dose0123456789abcdef"
)

// counting is a transport that counts token requests and can alter them.
type counting struct {
	n      atomic.Int64
	secret atomic.Pointer[string] // replaces the Basic secret when set
	broken atomic.Bool            // sends requests to a closed port
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if s := c.secret.Load(); s != nil {
		r = r.Clone(r.Context())
		id, _, _ := r.BasicAuth()
		r.SetBasicAuth(id, *s)
	}
	if c.broken.Load() {
		r = r.Clone(r.Context())
		r.URL.Host = "127.0.0.1:1"
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newSource(t *testing.T, ttl time.Duration) (*Source, *counting, *zerobustest.Server) {
	t.Helper()
	opts := []zerobustest.Option{zerobustest.WithClient(testID, testSecret)}
	if ttl > 0 {
		opts = append(opts, zerobustest.WithTokenTTL(ttl))
	}
	srv, err := zerobustest.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tr := &counting{}
	s, err := New(Config{ClientID: testID, ClientSecret: testSecret, WorkspaceURL: srv.WorkspaceURL(),
		Endpoint: srv.Endpoint(), HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, tr, srv
}

func TestTokenCachedPerTable(t *testing.T) {
	s, tr, _ := newSource(t, 0)
	ctx := context.Background()
	a, err := s.Token(ctx, testTable, false)
	if err != nil || a == "" {
		t.Fatalf("Token: %q %v", a, err)
	}
	b, err := s.Token(ctx, testTable, false)
	if err != nil || b != a || tr.n.Load() != 1 {
		t.Fatalf("second Token: %q (first %q), %d requests", b, a, tr.n.Load())
	}
	c, err := s.Token(ctx, "main.default.other", false)
	if err != nil || c == a || tr.n.Load() != 2 {
		t.Fatalf("other table: %q, %d requests", c, tr.n.Load())
	}
	d, err := s.Token(ctx, testTable, true)
	if err != nil || d == a || tr.n.Load() != 3 {
		t.Fatalf("forced refresh: %q, %d requests", d, tr.n.Load())
	}
	h, err := s.ForTable(testTable).Headers(ctx, false)
	if err != nil || h["authorization"] != "Bearer "+d {
		t.Fatalf("headers %v %v", h, err)
	}
}

func TestSingleFlight(t *testing.T) {
	s, tr, _ := newSource(t, 0)
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := s.Token(context.Background(), testTable, false)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("callers got different tokens")
		}
	}
	if tr.n.Load() != 1 {
		t.Fatalf("%d token requests for 50 concurrent callers, want 1", tr.n.Load())
	}
}

func TestRefreshAheadOfExpiry(t *testing.T) {
	s, tr, _ := newSource(t, 2*time.Second)
	ctx := context.Background()
	a, _ := s.Token(ctx, testTable, false)
	// A 2 s token is replaced once half its life has passed.
	time.Sleep(1100 * time.Millisecond)
	b, err := s.Token(ctx, testTable, false)
	if err != nil || b == a || tr.n.Load() != 2 {
		t.Fatalf("token not refreshed ahead of expiry: %v, %d requests", err, tr.n.Load())
	}
	// A transient refresh failure serves the still-valid token.
	s.mu.Lock()
	s.tables[testTable].refreshAt = time.Now()
	s.mu.Unlock()
	tr.broken.Store(true)
	c, err := s.Token(ctx, testTable, false)
	if err != nil || c != b {
		t.Fatalf("transient refresh failure: %q %v, want the cached token", c, err)
	}
	// A forced refresh does not fall back.
	if _, err := s.Token(ctx, testTable, true); err == nil {
		t.Fatal("forced refresh against a dead endpoint succeeded")
	}
}

func TestTokenErrors(t *testing.T) {
	t.Run("bad secret", func(t *testing.T) {
		s, tr, _ := newSource(t, 0)
		wrong := "wrong-" + testSecret
		tr.secret.Store(&wrong)
		_, err := s.Token(context.Background(), testTable, false)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Retryable() || e.Refresh || e.Code != "invalid_client" {
			t.Fatalf("error %#v", err)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Fatal("secret in error")
		}
		// After a first token, a refused request is a refresh failure.
		tr.secret.Store(nil)
		if _, err := s.Token(context.Background(), testTable, false); err != nil {
			t.Fatal(err)
		}
		tr.secret.Store(&wrong)
		_, err = s.Token(context.Background(), testTable, true)
		if !errors.As(err, &e) || !e.Refresh || e.Retryable() {
			t.Fatalf("refresh error %#v", err)
		}
	})
	t.Run("network", func(t *testing.T) {
		s, tr, _ := newSource(t, 0)
		tr.broken.Store(true)
		_, err := s.Token(context.Background(), testTable, false)
		var e *Error
		if !errors.As(err, &e) || !e.Retryable() || e.Status != 0 {
			t.Fatalf("error %#v", err)
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		s, _, _ := newSource(t, 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Token(ctx, testTable, false); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad table name", func(t *testing.T) {
		s, _, _ := newSource(t, 0)
		_, err := s.Token(context.Background(), "no_dots", false)
		var e *Error
		if !errors.As(err, &e) || e.Retryable() || !strings.Contains(err.Error(), "catalog.schema.table") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, _, _ := newSource(t, 0)
		s.Close()
		if _, err := s.Token(context.Background(), testTable, false); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("error %v", err)
		}
	})
}

// The Databricks token endpoint's failures that the local server does not
// produce: 5xx answers, and an error description that echoes the request.
func TestTokenEndpointFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retryable bool
	}{
		{"503", http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`, true},
		{"403 echoing the secret", http.StatusForbidden, `{"error":"access_denied","error_description":"client_secret=` + testSecret + ` refused"}`, false},
		{"200 without a token", http.StatusOK, `{"token_type":"Bearer"}`, false},
		{"200 not JSON", http.StatusOK, `<html>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer hs.Close()
			s, err := New(Config{ClientID: testID, ClientSecret: testSecret, WorkspaceURL: hs.URL,
				Endpoint: "https://1234.zerobus.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.Token(context.Background(), testTable, false)
			var e *Error
			if !errors.As(err, &e) || e.Retryable() != tt.retryable {
				t.Fatalf("error %v, want retryable %v", err, tt.retryable)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("secret in %q", err)
			}
		})
	}
}

// The request carries the form fields of the wire contract.
func TestTokenRequestForm(t *testing.T) {
	var form url.Values
	var user, pass string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		form = r.PostForm
		user, pass, _ = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	}))
	defer hs.Close()
	s, err := New(Config{ClientID: testID, ClientSecret: testSecret, WorkspaceURL: hs.URL + "/",
		Endpoint: "https://1234567.zerobus.us-west-2.cloud.databricks.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Token(context.Background(), testTable, false); err != nil {
		t.Fatal(err)
	}
	if user != testID || pass != testSecret {
		t.Fatalf("basic auth %q:%q", user, pass)
	}
	want := map[string]string{
		"grant_type": "client_credentials",
		"scope":      "all-apis",
		"resource":   "api://databricks/workspaces/1234567/zerobusDirectWriteApi",
	}
	for k, v := range want {
		if form.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, form.Get(k), v)
		}
	}
	var details []map[string]any
	if err := json.Unmarshal([]byte(form.Get("authorization_details")), &details); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(details)
	wantJSON := `[{"object_full_path":"main","object_type":"CATALOG","privileges":["USE CATALOG"],"type":"unity_catalog_privileges"},` +
		`{"object_full_path":"main.default","object_type":"SCHEMA","privileges":["USE SCHEMA"],"type":"unity_catalog_privileges"},` +
		`{"object_full_path":"main.default.events","object_type":"TABLE","privileges":["SELECT","MODIFY"],"type":"unity_catalog_privileges"}]`
	if string(got) != wantJSON {
		t.Fatalf("authorization_details\n got %s\nwant %s", got, wantJSON)
	}
}

func TestWorkspaceID(t *testing.T) {
	tests := []struct {
		endpoint, want string
		err            bool
	}{
		{"https://1234567890.zerobus.us-west-2.cloud.databricks.com", "1234567890", false},
		{"1234.zerobus.westeurope.azuredatabricks.net:443", "1234", false},
		{"http://127.0.0.1:50051", "127", false},
		{"http://localhost:50051", "localhost", false},
		{"", "", true},
		{"https://", "", true},
		{"https://.example.com", "", true},
		{"https://%zz", "", true},
	}
	for _, tt := range tests {
		got, err := WorkspaceID(tt.endpoint)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("WorkspaceID(%q) = %q, %v", tt.endpoint, got, err)
		}
	}
}

func TestNewChecks(t *testing.T) {
	ok := Config{ClientID: "id", ClientSecret: "s", WorkspaceURL: "https://w.example.com", Endpoint: "https://1.zerobus.example.com"}
	for name, mod := range map[string]func(*Config){
		"no id":        func(c *Config) { c.ClientID = "" },
		"no secret":    func(c *Config) { c.ClientSecret = "" },
		"no workspace": func(c *Config) { c.WorkspaceURL = "" },
		"bad url":      func(c *Config) { c.WorkspaceURL = "http://%zz" },
		"no endpoint":  func(c *Config) { c.Endpoint = "" },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// OnFetch sees every completed token request: the first for a table, then
// refreshes, and failures.
func TestOnFetch(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithClient(testID, testSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	type fetch struct {
		refresh, failed bool
	}
	var mu sync.Mutex
	var got []fetch
	tr := &counting{}
	s, err := New(Config{ClientID: testID, ClientSecret: testSecret, WorkspaceURL: srv.WorkspaceURL(),
		Endpoint: srv.Endpoint(), HTTPClient: &http.Client{Transport: tr},
		OnFetch: func(refresh bool, err error) {
			mu.Lock()
			got = append(got, fetch{refresh, err != nil})
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Token(ctx, testTable, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, testTable, true); err != nil {
		t.Fatal(err)
	}
	tr.broken.Store(true)
	if _, err := s.Token(ctx, testTable, true); err == nil {
		t.Fatal("refresh against a dead endpoint succeeded")
	}
	s.Close() // waits for the fetches, hooks included
	want := []fetch{{false, false}, {true, false}, {true, true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fetches %v, want %v", got, want)
	}
}
