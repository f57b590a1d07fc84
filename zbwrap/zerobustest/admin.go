package zerobustest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
)

// The admin endpoints (/admin/...) arm faults and expire or revoke tokens.
// A web page in a browser on the same machine can reach a loopback server
// too, and a cross-origin POST with a text/plain, form or multipart body is
// a "simple request" that the browser sends without asking the server first
// (no CORS preflight). So every admin request must prove it comes from a
// caller that read the admin token (Authorization: Bearer ADMIN_TOKEN,
// compared in constant time), and every state-changing one must also be
// Content-Type: application/json, which a page can only send after a
// preflight this server never grants.

// AdminHeader is the header that carries the admin token, as
// "Bearer ADMIN_TOKEN".
const AdminHeader = "Authorization"

// newAdminToken is a random admin token: 128 bits, base32 (letters and
// digits, so it fits a header and the command's ready line as it is).
func newAdminToken() string { return rand.Text() }

// validAdminToken reports why tok cannot be an admin token: it must be
// printable ASCII without spaces.
func validAdminToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("empty admin token")
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("the admin token must be printable ASCII without spaces (byte %d is %q)", i, c)
		}
	}
	return nil
}

// AdminToken is the token the admin endpoints require, as
// "Authorization: Bearer " + AdminToken(). It is random per server unless
// WithAdminToken sets it. NewAdminRequest adds it for you.
func (s *Server) AdminToken() string { return s.cfg.adminToken }

// NewAdminRequest returns a request for an admin endpoint of the workspace
// URL (path such as "/admin/faults") that carries the admin token and
// Content-Type: application/json. body is the JSON document to send, or
// nil. Send it with a client that trusts CertPool when the server serves
// TLS.
func (s *Server) NewAdminRequest(method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequest(method, s.workspaceURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("zerobustest: %w", err)
	}
	req.Header.Set(AdminHeader, "Bearer "+s.cfg.adminToken)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// admin guards an admin handler: the admin token on every request, and
// Content-Type: application/json on every request but GET and HEAD.
//
// Reads need the token too: a cross-origin page cannot read the answer of
// a GET, but a DNS-rebound one (a name the attacker points at 127.0.0.1)
// can, and armed faults are no business of any process that did not start
// the server. They need no Content-Type: a GET carries no body for it to
// describe, and the token alone refuses a browser's simple GET. DELETE is
// not a simple request (the browser preflights it), but it changes state,
// so it follows the rule of POST rather than carve out an exception.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.checkAdmin(w, r) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			ct := r.Header.Get("Content-Type")
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				s.log.Warn("admin request refused: not JSON", "method", r.Method, "path", r.URL.Path, "content_type", ct)
				apiError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
					fmt.Sprintf("admin requests that change state must be sent with Content-Type: application/json, not %q", ct))
				return
			}
		}
		h(w, r)
	}
}

// checkAdmin checks the admin token of r in constant time (of the token's
// length too: both sides are hashed first). It writes a 401 that never
// shows the expected token and returns false when the token is missing or
// wrong.
func (s *Server) checkAdmin(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get(AdminHeader), " ")
	tok = strings.TrimSpace(tok)
	problem := ""
	switch {
	case !ok || !strings.EqualFold(scheme, "Bearer") || tok == "":
		problem = "admin endpoints need the header " + AdminHeader + ": Bearer ADMIN_TOKEN " +
			"(zerobus-local prints the token as admin_token= in its ready line)"
	default:
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.adminToken))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			problem = "wrong admin token"
		}
	}
	if problem == "" {
		return true
	}
	s.log.Warn("admin request refused: "+problem, "method", r.Method, "path", r.URL.Path,
		"remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
	w.Header().Set("WWW-Authenticate", `Bearer realm="zerobus-local admin"`)
	apiError(w, http.StatusUnauthorized, "UNAUTHENTICATED", problem)
	return false
}

// warnIfExposed warns when the workspace URL listens beyond loopback:
// whoever can reach it can ask for tokens with a client secret, and with
// the admin token arm faults.
func (s *Server) warnIfExposed(addr net.Addr) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() {
		return
	}
	s.log.Warn("the workspace URL (tokens, Unity Catalog, admin endpoints) listens on a non-loopback address: "+
		"other machines can reach it; only the admin token guards the admin endpoints", "address", ta.String())
}
