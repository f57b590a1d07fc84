package zerobustest

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// adminRoutes are every admin route with a body that would succeed.
var adminRoutes = []struct{ method, path, body string }{
	{http.MethodGet, "/admin/faults", ""},
	{http.MethodPost, "/admin/faults", `{"kind":"fail_create_stream","code":"INTERNAL","times":-1}`},
	{http.MethodDelete, "/admin/faults", ""},
	{http.MethodPost, "/admin/tokens/expire", ""},
	{http.MethodPost, "/admin/tokens/revoke", ""},
}

// rawAdmin sends an admin request with exactly the headers given.
func rawAdmin(t *testing.T, s *Server, method, path, body string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.WorkspaceURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	resp, err := httpClient(s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A web page's cross-origin POST (text/plain: a simple request, sent without
// a CORS preflight) arms no fault, with or without the admin token; data
// sent afterwards meets no fault.
func TestAdminRefusesCrossOriginPlainText(t *testing.T) {
	s := newServer(t, WithDiscard())
	fault := `{"kind":"fail_create_stream","code":"INTERNAL","times":-1}`
	for _, tc := range []struct {
		name string
		hdr  http.Header
		code int
	}{
		{"no token", http.Header{"Content-Type": {"text/plain"}, "Origin": {"http://attacker.example"}}, http.StatusUnauthorized},
		{"form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"http://attacker.example"}}, http.StatusUnauthorized},
		{"token, text/plain", http.Header{"Content-Type": {"text/plain;charset=UTF-8"}, "Authorization": {"Bearer " + s.AdminToken()}}, http.StatusUnsupportedMediaType},
		{"token, no type", http.Header{"Authorization": {"Bearer " + s.AdminToken()}}, http.StatusUnsupportedMediaType},
	} {
		code, body := rawAdmin(t, s, http.MethodPost, "/admin/faults", fault, tc.hdr)
		if code != tc.code {
			t.Errorf("%s: HTTP %d %s, want %d", tc.name, code, body, tc.code)
		}
		if tc.code == http.StatusUnsupportedMediaType && !strings.Contains(body, "Content-Type: application/json") {
			t.Errorf("%s: message %s does not name the type to send", tc.name, body)
		}
	}
	if n := len(s.Faults()); n != 0 {
		t.Fatalf("%d faults armed by refused requests", n)
	}
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 10)))
	cc.waitAck(0)
	if n := s.Stats().FaultsFired; n != 0 {
		t.Fatalf("%d faults fired", n)
	}
}

// Every admin route refuses a missing or wrong token (401, without showing
// the expected one) and works with the right one.
func TestAdminToken(t *testing.T) {
	var logs syncBuffer
	s := newServer(t, WithDiscard(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	tableToken := s.Token(testTable)
	for _, rt := range adminRoutes {
		for name, auth := range map[string]string{
			"missing":     "",
			"wrong":       "Bearer " + s.AdminToken() + "x",
			"prefix":      "Bearer " + s.AdminToken()[:10],
			"table token": "Bearer " + tableToken,
			"basic":       "Basic " + s.AdminToken(),
			"empty":       "Bearer ",
		} {
			hdr := http.Header{"Content-Type": {"application/json"}}
			if auth != "" {
				hdr.Set("Authorization", auth)
			}
			code, body := rawAdmin(t, s, rt.method, rt.path, rt.body, hdr)
			if code != http.StatusUnauthorized || !strings.Contains(body, "UNAUTHENTICATED") || strings.Contains(body, s.AdminToken()) {
				t.Errorf("%s %s, %s token: HTTP %d %s", rt.method, rt.path, name, code, body)
			}
		}
		if len(s.Faults()) != 0 {
			t.Fatalf("%s %s armed a fault without the token", rt.method, rt.path)
		}
	}
	code, body := rawAdmin(t, s, http.MethodGet, "/admin/faults", "", http.Header{"Authorization": {"Bearer nope"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "wrong admin token") {
		t.Errorf("wrong token: HTTP %d %s", code, body)
	}
	code, body = rawAdmin(t, s, http.MethodGet, "/admin/faults", "", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "Authorization: Bearer ADMIN_TOKEN") {
		t.Errorf("no token: HTTP %d %s", code, body)
	}
	want := []int{http.StatusOK, http.StatusOK, http.StatusNoContent, http.StatusOK, http.StatusOK}
	for i, rt := range adminRoutes {
		var body io.Reader
		if rt.body != "" {
			body = strings.NewReader(rt.body)
		}
		if code := adminJSON(t, s, rt.method, rt.path, body, nil); code != want[i] {
			t.Errorf("%s %s with the admin token: HTTP %d, want %d", rt.method, rt.path, code, want[i])
		}
	}
	// The scheme is case-insensitive and the type may carry parameters.
	code, body = rawAdmin(t, s, http.MethodPost, "/admin/faults", `{"kind":"stop_acks"}`,
		http.Header{"Authorization": {"bearer " + s.AdminToken()}, "Content-Type": {"application/json; charset=utf-8"}})
	if code != http.StatusOK || len(s.Faults()) != 1 {
		t.Fatalf("lower-case bearer, charset: HTTP %d %s, %d faults", code, body, len(s.Faults()))
	}
	if strings.Contains(logs.String(), s.AdminToken()) {
		t.Fatal("the admin token leaked into the logs")
	}
	if !strings.Contains(logs.String(), "admin request refused") {
		t.Fatalf("refusals not logged:\n%s", logs.String())
	}
}

func TestWithAdminToken(t *testing.T) {
	s := newServer(t, WithDiscard(), WithAdminToken("my-admin-token"))
	if s.AdminToken() != "my-admin-token" {
		t.Fatalf("AdminToken = %q", s.AdminToken())
	}
	req, err := s.NewAdminRequest(http.MethodGet, "/admin/faults", nil)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "Bearer my-admin-token" || req.Header.Get("Content-Type") != "application/json" ||
		req.URL.String() != s.WorkspaceURL()+"/admin/faults" {
		t.Fatalf("request %s %v", req.URL, req.Header)
	}
	if _, err := s.NewAdminRequest("BAD METHOD", "/admin/faults", nil); err == nil {
		t.Fatal("NewAdminRequest accepted an invalid method")
	}
	for _, bad := range []string{"", "two words", "tab\there", "caf\u00e9", "nl\n"} {
		if _, err := NewServer(WithDiscard(), WithAdminToken(bad)); err == nil || !strings.Contains(err.Error(), "WithAdminToken") {
			t.Errorf("WithAdminToken(%q): %v", bad, err)
		}
	}
	a, b := newServer(t, WithDiscard()).AdminToken(), newServer(t, WithDiscard()).AdminToken()
	if len(a) < 26 || a == b {
		t.Fatalf("default admin tokens %q and %q: want random, at least 128 bits", a, b)
	}
}

// A workspace URL on a non-loopback address is logged as a warning; one on
// loopback is not. The test binds 0.0.0.0 but talks to 127.0.0.1 only.
func TestWarnNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}, {"localhost:0", false}} {
		var logs syncBuffer
		s := newServer(t, WithDiscard(), WithListen("", tc.addr), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "non-loopback"); got != tc.warn {
			t.Errorf("%s: warned %v, want %v:\n%s", tc.addr, got, tc.warn, logs.String())
		}
		if !strings.HasPrefix(s.WorkspaceURL(), "http://127.0.0.1:") {
			t.Errorf("%s: workspace URL %s", tc.addr, s.WorkspaceURL())
		}
		if code := adminJSON(t, s, http.MethodGet, "/admin/faults", nil, nil); code != http.StatusOK {
			t.Errorf("%s: admin over 127.0.0.1: HTTP %d", tc.addr, code)
		}
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
