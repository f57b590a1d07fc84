package zerobustest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestTokenEndpoint(t *testing.T) {
	s := newServer(t, WithDiscard(), WithClient("sp", "s3cret"), WithClient("other", "pw"), WithTokenTTL(90*time.Minute))
	good := tokenForm(testTable)
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	grants := func(g ...map[string]any) string {
		b, _ := json.Marshal(g)
		return string(b)
	}
	cat := map[string]any{"type": "unity_catalog_privileges", "privileges": []string{"USE CATALOG"}, "object_type": "CATALOG", "object_full_path": "main"}
	sch := map[string]any{"type": "unity_catalog_privileges", "privileges": []string{"USE SCHEMA"}, "object_type": "SCHEMA", "object_full_path": "main.default"}
	tbl := func(path string, privs ...string) map[string]any {
		return map[string]any{"type": "unity_catalog_privileges", "privileges": privs, "object_type": "TABLE", "object_full_path": path}
	}
	inForm := with("client_id", "sp")
	inForm.Set("client_secret", "s3cret")

	tests := []struct {
		name       string
		id, secret string
		form       url.Values
		code       int
		errCode    string
		table      string // table of the token issued
	}{
		{"table token", "sp", "s3cret", good, 200, "", testTable},
		{"second client", "other", "pw", good, 200, "", testTable},
		{"credentials in the form", "", "", inForm, 200, "", testTable},
		{"workspace token", "sp", "s3cret", with("authorization_details", ""), 200, "", ""},
		{"no resource", "sp", "s3cret", with("resource", ""), 200, "", testTable},
		{"no scope", "sp", "s3cret", with("scope", ""), 200, "", testTable},
		{"wrong secret", "sp", "nope", good, 401, "invalid_client", ""},
		{"unknown client", "who", "s3cret", good, 401, "invalid_client", ""},
		{"no credentials", "", "", good, 401, "invalid_client", ""},
		{"wrong grant type", "sp", "s3cret", with("grant_type", "password"), 400, "unsupported_grant_type", ""},
		{"no grant type", "sp", "s3cret", with("grant_type", ""), 400, "unsupported_grant_type", ""},
		{"wrong scope", "sp", "s3cret", with("scope", "sql"), 400, "invalid_scope", ""},
		{"wrong resource", "sp", "s3cret", with("resource", "api://databricks/workspaces/1/other"), 400, "invalid_target", ""},
		{"resource of another API", "sp", "s3cret", with("resource", "https://example.com"), 400, "invalid_target", ""},
		{"resource with a slash", "sp", "s3cret", with("resource", "api://databricks/workspaces/a/b/zerobusDirectWriteApi"), 400, "invalid_target", ""},
		{"grants not JSON", "sp", "s3cret", with("authorization_details", "{"), 400, "invalid_request", ""},
		{"grant of another type", "sp", "s3cret", with("authorization_details", `[{"type":"other"}]`), 400, "invalid_request", ""},
		{"no table granted", "sp", "s3cret", with("authorization_details", grants(cat, sch)), 400, "invalid_request", ""},
		{"two tables granted", "sp", "s3cret", with("authorization_details", grants(cat, sch, tbl(testTable, "SELECT", "MODIFY"), tbl("main.default.b", "SELECT", "MODIFY"))), 400, "invalid_request", ""},
		{"bad table name", "sp", "s3cret", with("authorization_details", grants(cat, sch, tbl("main.default", "SELECT", "MODIFY"))), 400, "invalid_request", ""},
		{"no MODIFY", "sp", "s3cret", with("authorization_details", grants(cat, sch, tbl(testTable, "SELECT"))), 403, "access_denied", ""},
		{"no USE CATALOG", "sp", "s3cret", with("authorization_details", grants(sch, tbl(testTable, "SELECT", "MODIFY"))), 403, "access_denied", ""},
		{"no USE SCHEMA", "sp", "s3cret", with("authorization_details", grants(cat, tbl(testTable, "select", "modify"))), 403, "access_denied", ""},
		{"privileges in lower case", "sp", "s3cret", with("authorization_details", grants(cat, sch, tbl("Main.Default.Events", "select", "modify"))), 200, "", testTable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := fetchToken(t, s, tc.id, tc.secret, tc.form)
			if code != tc.code {
				t.Fatalf("HTTP %d %v, want %d", code, body, tc.code)
			}
			if tc.code != 200 {
				if body["error"] != tc.errCode || body["error_description"] == "" {
					t.Fatalf("error body %v, want error %q with a description", body, tc.errCode)
				}
				if strings.Contains(body["error_description"].(string), "s3cret") {
					t.Fatal("the secret leaked into the error")
				}
				return
			}
			tok, _ := body["access_token"].(string)
			if tok == "" || body["token_type"] != "Bearer" || body["expires_in"] != float64(90*60) {
				t.Fatalf("token body %v", body)
			}
			if table, problem := s.tokens.check(tok); problem != "" || table != tc.table {
				t.Fatalf("token grants %q (%s), want %q", table, problem, tc.table)
			}
		})
	}

	t.Run("token opens a stream", func(t *testing.T) {
		_, body := fetchToken(t, s, "sp", "s3cret", good)
		cc := rawCall(t, dial(t, s), authMD(body["access_token"].(string), testTable))
		cc.send(createReq(testTable))
		if cc.recv().GetCreateStreamResponse() == nil {
			t.Fatal("no create_stream_response")
		}
	})
	t.Run("oversized form", func(t *testing.T) {
		f := with("scope", strings.Repeat("x", maxBody+1))
		code, body := fetchToken(t, s, "sp", "s3cret", f)
		if code != 400 || body["error"] != "invalid_request" {
			t.Fatalf("HTTP %d %v", code, body)
		}
	})
	t.Run("GET is not allowed", func(t *testing.T) {
		if code := doJSON(t, s, http.MethodGet, "/oidc/v1/token", nil, nil, nil); code != http.StatusMethodNotAllowed {
			t.Fatalf("HTTP %d", code)
		}
	})
}

func TestUnityCatalogTables(t *testing.T) {
	for _, discard := range []bool{false, true} {
		name := "durable"
		var opts []Option
		if discard {
			name, opts = "discard", []Option{WithDiscard()}
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, append(opts, WithClient("sp", "pw"))...)
			_, body := fetchToken(t, s, "sp", "pw", url.Values{"grant_type": {"client_credentials"}, "scope": {"all-apis"}})
			ws := http.Header{"Authorization": {"Bearer " + body["access_token"].(string)}}

			create := `{"name":"Events","catalog_name":"main","schema_name":"default","table_type":"MANAGED","data_source_format":"DELTA",
				"columns":[
				 {"name":"tags","type_text":"map<string,int>","type_name":"MAP","nullable":false,"position":2},
				 {"name":"id","type_name":"LONG","nullable":false,"position":0},
				 {"name":"payload","type_text":"struct<a:int,b:array<string>>","type_name":"STRUCT","position":1},
				 {"name":"amount","type_text":"decimal(10,2)","type_name":"DECIMAL","position":3}]}`
			var got ucTable
			if code := doJSON(t, s, http.MethodPost, "/api/2.1/unity-catalog/tables", strings.NewReader(create), ws, &got); code != 200 {
				t.Fatalf("create: HTTP %d %+v", code, got)
			}
			if got.FullName != testTable || len(got.Columns) != 4 {
				t.Fatalf("created %+v", got)
			}
			var read ucTable
			if code := doJSON(t, s, http.MethodGet, "/api/2.1/unity-catalog/tables/"+testTable, nil, ws, &read); code != 200 {
				t.Fatalf("get: HTTP %d", code)
			}
			want := []struct {
				name, typeName, typeText string
				nullable                 bool
				position                 int
			}{
				{"id", "LONG", "bigint", false, 0},
				{"payload", "STRUCT", "struct<a:int,b:array<string>>", true, 1},
				{"tags", "MAP", "map<string,int>", false, 2},
				{"amount", "DECIMAL", "decimal(10,2)", true, 3},
			}
			if read.Name != "events" || read.CatalogName != "main" || read.SchemaName != "default" || read.TableType != "MANAGED" || read.DataSourceFormat != "DELTA" {
				t.Errorf("table %+v", read)
			}
			if (read.StorageLocation != "") == discard {
				t.Errorf("storage_location %q in mode %s", read.StorageLocation, name)
			}
			for i, w := range want {
				c := read.Columns[i]
				if c.Name != w.name || c.TypeName != w.typeName || c.TypeText != w.typeText || c.Nullable != w.nullable || c.Position != w.position || c.TypeJSON == "" {
					t.Errorf("column %d = %+v, want %+v", i, c, w)
				}
			}
			if read.Columns[3].TypePrecision != 10 || read.Columns[3].TypeScale != 2 {
				t.Errorf("decimal column %+v", read.Columns[3])
			}
			// Declaring it again the same way is fine; otherwise a conflict.
			if code := doJSON(t, s, http.MethodPost, "/api/2.1/unity-catalog/tables", strings.NewReader(create), ws, nil); code != 200 {
				t.Errorf("same table again: HTTP %d", code)
			}

			tableTok := http.Header{"Authorization": {"Bearer " + s.Token(testTable)}}
			otherTok := http.Header{"Authorization": {"Bearer " + s.Token("main.default.other")}}
			expired := s.Token(testTable)
			s.tokens.mu.Lock()
			s.tokens.m[expired].expires = time.Now().Add(-time.Minute)
			s.tokens.mu.Unlock()
			errCases := []struct {
				name, method, path, body string
				hdr                      http.Header
				code                     int
				errCode                  string
			}{
				{"table token reads its table", "GET", "/api/2.1/unity-catalog/tables/" + testTable, "", tableTok, 200, ""},
				{"unknown table", "GET", "/api/2.1/unity-catalog/tables/main.default.nope", "", ws, 404, "TABLE_DOES_NOT_EXIST"},
				{"bad name", "GET", "/api/2.1/unity-catalog/tables/nope", "", ws, 400, "INVALID_PARAMETER_VALUE"},
				{"no token", "GET", "/api/2.1/unity-catalog/tables/" + testTable, "", nil, 401, "UNAUTHENTICATED"},
				{"expired token", "GET", "/api/2.1/unity-catalog/tables/" + testTable, "", http.Header{"Authorization": {"Bearer " + expired}}, 401, "UNAUTHENTICATED"},
				{"token of another table", "GET", "/api/2.1/unity-catalog/tables/" + testTable, "", otherTok, 403, "PERMISSION_DENIED"},
				{"conflict", "POST", "/api/2.1/unity-catalog/tables", `{"name":"events","catalog_name":"main","schema_name":"default","columns":[{"name":"id","type_text":"string"}]}`, ws, 409, "TABLE_ALREADY_EXISTS"},
				{"bad type", "POST", "/api/2.1/unity-catalog/tables", `{"name":"t2","catalog_name":"main","schema_name":"default","columns":[{"name":"id","type_text":"int<"}]}`, ws, 400, "INVALID_PARAMETER_VALUE"},
				{"no columns", "POST", "/api/2.1/unity-catalog/tables", `{"name":"t3","catalog_name":"main","schema_name":"default","columns":[]}`, ws, 400, "INVALID_PARAMETER_VALUE"},
				{"bad JSON", "POST", "/api/2.1/unity-catalog/tables", `{"name":`, ws, 400, "MALFORMED_REQUEST"},
				{"bad table name", "POST", "/api/2.1/unity-catalog/tables", `{"name":"t 4","catalog_name":"main","schema_name":"default","columns":[{"name":"id","type_text":"int"}]}`, ws, 400, "INVALID_PARAMETER_VALUE"},
				{"create without token", "POST", "/api/2.1/unity-catalog/tables", `{"name":"t5","catalog_name":"main","schema_name":"default","columns":[{"name":"id","type_text":"int"}]}`, nil, 401, "UNAUTHENTICATED"},
			}
			for _, ec := range errCases {
				t.Run(ec.name, func(t *testing.T) {
					var body map[string]any
					code := doJSON(t, s, ec.method, ec.path, strings.NewReader(ec.body), ec.hdr, &body)
					if code != ec.code || (ec.errCode != "" && (body["error_code"] != ec.errCode || body["message"] == "")) {
						t.Fatalf("HTTP %d %v, want %d %s", code, body, ec.code, ec.errCode)
					}
				})
			}
		})
	}
}

func TestStreamToCreatedTable(t *testing.T) {
	s := newServer(t, WithAutoCreate(false))
	ws := http.Header{"Authorization": {"Bearer " + s.Token("")}}
	body := `{"name":"events","catalog_name":"main","schema_name":"default","columns":[{"name":"id","type_name":"LONG"},{"name":"name","type_name":"STRING"}]}`
	if code := doJSON(t, s, http.MethodPost, "/api/2.1/unity-catalog/tables", strings.NewReader(body), ws, nil); code != 200 {
		t.Fatalf("create: HTTP %d", code)
	}
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 3)))
	cc.waitAck(0)
}

func TestStreamAuthAfterTokenAdmin(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := dial(t, s)
	tok := s.Token(testTable)
	var out map[string]int
	if code := adminJSON(t, s, http.MethodPost, "/admin/tokens/expire", nil, &out); code != 200 || out["expired"] != 1 {
		t.Fatalf("expire: HTTP %d %v", code, out)
	}
	cc := rawCall(t, c, authMD(tok, testTable))
	cc.send(createReq(testTable))
	_, err := cc.end()
	wantCode(t, err, codes.Unauthenticated, "token expired")

	tok = s.Token(testTable)
	if code := adminJSON(t, s, http.MethodPost, "/admin/tokens/revoke", nil, &out); code != 200 || out["revoked"] != 1 {
		t.Fatalf("revoke: HTTP %d %v", code, out)
	}
	cc = rawCall(t, c, authMD(tok, testTable))
	cc.send(createReq(testTable))
	_, err = cc.end()
	wantCode(t, err, codes.Unauthenticated, "token revoked")
	if s.ExpireTokens() != 0 || s.RevokeTokens() != 0 {
		t.Error("dead tokens counted again")
	}
}

func TestTokenStorePrunes(t *testing.T) {
	ts := newTokenStore(time.Minute)
	old := ts.issue(testTable)
	ts.mu.Lock()
	ts.m[old].expires = time.Now().Add(-2 * time.Minute)
	ts.lastPrune = time.Now().Add(-2 * time.Minute)
	ts.mu.Unlock()
	fresh := ts.issue(testTable)
	if _, problem := ts.check(old); problem != "unknown token" {
		t.Fatalf("old token: %q, want forgotten", problem)
	}
	if table, problem := ts.check(fresh); problem != "" || table != testTable {
		t.Fatalf("fresh token: %q %q", table, problem)
	}
}

// Basic auth credentials are accepted raw and form-encoded (RFC 6749 §2.3.1,
// as golang.org/x/oauth2 sends them), so secrets with reserved characters work
// with every client.
func TestTokenEndpointEncodedBasicAuth(t *testing.T) {
	const id, secret = "svc+1", "a+b/c=d%e f:g"
	s := newServer(t, WithDiscard(), WithClient(id, secret))
	for name, creds := range map[string][2]string{
		"raw":          {id, secret},
		"form-encoded": {url.QueryEscape(id), url.QueryEscape(secret)},
	} {
		if code, out := fetchToken(t, s, creds[0], creds[1], tokenForm(testTable)); code != 200 {
			t.Errorf("%s: HTTP %d %v", name, code, out)
		}
	}
	if code, _ := fetchToken(t, s, url.QueryEscape(id), "a+b", tokenForm(testTable)); code != 401 {
		t.Errorf("wrong secret: HTTP %d, want 401", code)
	}
}
