package zerobustest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest/internal/lake"
)

const maxBody = 1 << 20

// routes is the workspace URL: OAuth tokens, Unity Catalog tables, admin.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oidc/v1/token", s.handleToken)
	mux.HandleFunc("GET /api/2.1/unity-catalog/tables/{full_name}", s.handleGetTable)
	mux.HandleFunc("POST /api/2.1/unity-catalog/tables", s.handleCreateTable)
	mux.HandleFunc("GET /stats", s.handleStats)
	// Every admin route goes through s.admin (admin.go): the admin token,
	// and JSON for whatever changes state.
	mux.HandleFunc("GET /admin/faults", s.admin(s.handleListFaults))
	mux.HandleFunc("POST /admin/faults", s.admin(s.handleAddFaults))
	mux.HandleFunc("DELETE /admin/faults", s.admin(s.handleClearFaults))
	mux.HandleFunc("POST /admin/tokens/expire", s.admin(s.handleExpireTokens))
	mux.HandleFunc("POST /admin/tokens/revoke", s.admin(s.handleRevokeTokens))
	return s.recoverHTTP(mux)
}

// recoverHTTP answers 500 instead of dropping the connection when a
// handler panics.
func (s *Server) recoverHTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				apiError(w, http.StatusInternalServerError, "INTERNAL_ERROR", fmt.Sprintf("internal error: %v", v))
			}
		}()
		s.testHook("http")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error_code":"INTERNAL_ERROR","message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// apiError writes a Databricks REST error body.
func apiError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]string{"error_code": errCode, "message": msg})
}

// oauthError writes an OAuth 2.0 error body (RFC 6749 §5.2).
func oauthError(w http.ResponseWriter, code int, errCode, desc string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="zerobus-local"`)
	}
	writeJSON(w, code, map[string]string{"error": errCode, "error_description": desc})
}

// checkClient compares credentials in constant time.
func (s *Server) checkClient(id, secret string) bool {
	want, ok := s.cfg.clients[id]
	if !ok {
		want = "\x00no such client"
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(secret)) == 1 && ok
}

// handleToken is the OAuth client-credentials token endpoint. With
// authorization_details it issues a token for the one table granted; without,
// a workspace token that serves the Unity Catalog API only.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "cannot read the form body: "+err.Error())
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if ok && !s.checkClient(id, secret) {
		// RFC 6749 §2.3.1 form-encodes the id and secret before Basic auth
		// (golang.org/x/oauth2 does); other clients send them raw. Take both.
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 == nil && err2 == nil {
			id, secret = uid, usecret
		}
	}
	if id == "" || !s.checkClient(id, secret) {
		s.log.Info("token refused: bad client credentials", "client_id", id)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not client_credentials", gt))
		return
	}
	if sc := r.PostForm.Get("scope"); sc != "" && !slices.Contains(strings.Fields(sc), "all-apis") {
		oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q does not include all-apis", sc))
		return
	}
	if res := r.PostForm.Get("resource"); res != "" && !validResource(res) {
		oauthError(w, http.StatusBadRequest, "invalid_target",
			fmt.Sprintf("resource %q is not api://databricks/workspaces/<workspace-id>/zerobusDirectWriteApi", res))
		return
	}
	table := ""
	if ad := r.PostForm.Get("authorization_details"); ad != "" {
		t, code, err := checkGrants(ad)
		if err != nil {
			errCode := "invalid_request"
			if code == http.StatusForbidden {
				errCode = "access_denied"
			}
			oauthError(w, code, errCode, err.Error())
			return
		}
		table = t
	}
	tok := s.tokens.issue(table)
	s.tokensGranted.Add(1)
	s.log.Info("token issued", "client_id", id, "table", table)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.cfg.tokenTTL.Seconds()),
		"scope":        "all-apis",
	})
}

func validResource(res string) bool {
	rest, ok := strings.CutPrefix(res, "api://databricks/workspaces/")
	if !ok {
		return false
	}
	ws, ok := strings.CutSuffix(rest, "/zerobusDirectWriteApi")
	return ok && ws != "" && !strings.Contains(ws, "/")
}

// grant is one entry of authorization_details.
type grant struct {
	Type           string   `json:"type"`
	Privileges     []string `json:"privileges"`
	ObjectType     string   `json:"object_type"`
	ObjectFullPath string   `json:"object_full_path"`
	Operations     []string `json:"operations"`
}

func (g grant) has(priv string) bool {
	return slices.ContainsFunc(g.Privileges, func(p string) bool { return strings.EqualFold(strings.TrimSpace(p), priv) })
}

// checkGrants reads authorization_details and returns the one table it
// grants, or an HTTP status (400 malformed, 403 missing privileges) and why.
func checkGrants(ad string) (string, int, error) {
	var gs []grant
	if err := json.Unmarshal([]byte(ad), &gs); err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("authorization_details is not a JSON array of grants: %v", err)
	}
	var tables []grant
	for i, g := range gs {
		if g.Type != "unity_catalog_privileges" {
			return "", http.StatusBadRequest, fmt.Errorf("authorization_details[%d]: type %q is not unity_catalog_privileges", i, g.Type)
		}
		if strings.EqualFold(g.ObjectType, "TABLE") {
			tables = append(tables, g)
		}
	}
	if len(tables) != 1 {
		return "", http.StatusBadRequest, fmt.Errorf("authorization_details must grant exactly one TABLE, found %d", len(tables))
	}
	t := tables[0]
	table := t.ObjectFullPath
	if err := validTableName(table); err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("authorization_details: %v", err)
	}
	if !t.has("SELECT") || !t.has("MODIFY") {
		return "", http.StatusForbidden, fmt.Errorf("TABLE %s must be granted SELECT and MODIFY, got %v", table, t.Privileges)
	}
	parts := strings.Split(table, ".")
	need := []struct{ typ, path, priv string }{
		{"CATALOG", parts[0], "USE CATALOG"},
		{"SCHEMA", parts[0] + "." + parts[1], "USE SCHEMA"},
	}
	for _, n := range need {
		if !slices.ContainsFunc(gs, func(g grant) bool {
			return strings.EqualFold(g.ObjectType, n.typ) && strings.EqualFold(g.ObjectFullPath, n.path) && g.has(n.priv)
		}) {
			return "", http.StatusForbidden, fmt.Errorf("%s %s must be granted %s", n.typ, n.path, n.priv)
		}
	}
	return canon(table), 0, nil
}

// authorizeTable checks the bearer token of a Unity Catalog request for
// table: a workspace token or the table's own token. It writes the error
// and returns false otherwise.
func (s *Server) authorizeTable(w http.ResponseWriter, r *http.Request, table string) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "missing Authorization: Bearer token")
		return false
	}
	t, problem := s.tokens.check(strings.TrimSpace(tok))
	if problem != "" {
		apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", problem)
		return false
	}
	if t != "" && t != table {
		apiError(w, http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("the token grants table %s, not %s", t, table))
		return false
	}
	return true
}

// ucTable is a table as GET /api/2.1/unity-catalog/tables/{full_name}
// returns it.
type ucTable struct {
	Name             string          `json:"name"`
	CatalogName      string          `json:"catalog_name"`
	SchemaName       string          `json:"schema_name"`
	FullName         string          `json:"full_name"`
	TableType        string          `json:"table_type"`
	DataSourceFormat string          `json:"data_source_format"`
	StorageLocation  string          `json:"storage_location,omitempty"`
	Columns          []lake.UCColumn `json:"columns"`
}

func (s *Server) ucTable(name string, cols []lake.Column) ucTable {
	p := strings.Split(name, ".")
	t := ucTable{
		Name: p[2], CatalogName: p[0], SchemaName: p[1], FullName: name,
		TableType: "MANAGED", DataSourceFormat: "DELTA",
		Columns: lake.UCColumnsOf(cols),
	}
	if s.lake != nil {
		t.StorageLocation = (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(s.dataDir, p[0], p[1], p[2]))}).String()
	}
	return t
}

func (s *Server) handleGetTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("full_name")
	if err := validTableName(name); err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
		return
	}
	name = canon(name)
	if !s.authorizeTable(w, r, name) {
		return
	}
	cols, ok := s.tableColumns(name)
	if !ok {
		apiError(w, http.StatusNotFound, "TABLE_DOES_NOT_EXIST", fmt.Sprintf("Table '%s' does not exist.", name))
		return
	}
	writeJSON(w, http.StatusOK, s.ucTable(name, cols))
}

// ucCreate is the body of POST /api/2.1/unity-catalog/tables.
type ucCreate struct {
	Name        string       `json:"name"`
	CatalogName string       `json:"catalog_name"`
	SchemaName  string       `json:"schema_name"`
	Columns     []ucColumnIn `json:"columns"`
}

// ucColumnIn is a column of a table to create.
type ucColumnIn struct {
	Name     string `json:"name"`
	TypeText string `json:"type_text"`
	TypeName string `json:"type_name"`
	Nullable *bool  `json:"nullable"`
	Position *int   `json:"position"`
}

// handleCreateTable declares a table with Delta types (type_text, else
// type_name); columns are nullable unless they say otherwise and ordered by
// position when given.
func (s *Server) handleCreateTable(w http.ResponseWriter, r *http.Request) {
	var req ucCreate
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", "cannot read the table: "+err.Error())
		return
	}
	name := req.CatalogName + "." + req.SchemaName + "." + req.Name
	if err := validTableName(name); err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
		return
	}
	name = canon(name)
	if !s.authorizeTable(w, r, name) {
		return
	}
	if len(req.Columns) == 0 {
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "a table needs at least one column")
		return
	}
	slices.SortStableFunc(req.Columns, func(a, b ucColumnIn) int {
		if a.Position == nil || b.Position == nil {
			return 0
		}
		return *a.Position - *b.Position
	})
	cols := make([]Column, len(req.Columns))
	for i, c := range req.Columns {
		typ := c.TypeText
		if typ == "" {
			typ = c.TypeName
		}
		cols[i] = Column{Name: c.Name, Type: typ, Nullable: c.Nullable == nil || *c.Nullable}
	}
	if err := s.createTable(name, cols); err != nil {
		if errors.Is(err, errTableExists) {
			apiError(w, http.StatusConflict, "TABLE_ALREADY_EXISTS", fmt.Sprintf("Table '%s' already exists with other columns: %v", name, err))
			return
		}
		apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
		return
	}
	s.log.Info("table created", "table", name, "columns", len(cols))
	lc, _ := s.tableColumns(name)
	writeJSON(w, http.StatusOK, s.ucTable(name, lc))
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleListFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
}

// handleAddFaults arms one fault (a JSON object) or several (an array).
func (s *Server) handleAddFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", err.Error())
		return
	}
	var fs []Fault
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		err = json.Unmarshal(b, &fs)
	} else {
		var f Fault
		err = json.Unmarshal(b, &f)
		fs = []Fault{f}
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "MALFORMED_REQUEST", err.Error())
		return
	}
	for _, f := range fs {
		if err := f.validate(); err != nil {
			apiError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
			return
		}
	}
	for _, f := range fs {
		_ = s.InjectFault(f) // validated above
	}
	writeJSON(w, http.StatusOK, map[string]int{"armed": len(fs)})
}

func (s *Server) handleClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleExpireTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"expired": s.ExpireTokens()})
}

func (s *Server) handleRevokeTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeTokens()})
}
