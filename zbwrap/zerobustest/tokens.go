package zerobustest

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// tokenInfo is what an opaque token stands for.
type tokenInfo struct {
	table   string // catalog.schema.table; empty for a workspace token
	expires time.Time
	revoked bool
}

// tokenStore issues and checks opaque bearer tokens, each bound to one
// table (or to none: a workspace token, good for the Unity Catalog API only).
type tokenStore struct {
	ttl time.Duration

	mu        sync.RWMutex
	m         map[string]*tokenInfo
	lastPrune time.Time
}

func newTokenStore(ttl time.Duration) *tokenStore {
	return &tokenStore{ttl: ttl, m: map[string]*tokenInfo{}, lastPrune: time.Now()}
}

// issue makes a new token for table.
func (ts *tokenStore) issue(table string) string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	tok := "zbt_" + base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.m[tok] = &tokenInfo{table: canon(table), expires: now.Add(ts.ttl)}
	if now.Sub(ts.lastPrune) > time.Minute {
		ts.pruneLocked(now)
	}
	return tok
}

// pruneLocked forgets tokens that expired more than one TTL ago (until then
// a stale token is still reported as expired or revoked, not unknown).
func (ts *tokenStore) pruneLocked(now time.Time) {
	ts.lastPrune = now
	for k, v := range ts.m {
		if now.Sub(v.expires) > ts.ttl {
			delete(ts.m, k)
		}
	}
}

// check returns the table of a valid token, or why the token is refused.
func (ts *tokenStore) check(tok string) (table, problem string) {
	ts.mu.RLock()
	info, ok := ts.m[tok]
	var ti tokenInfo
	if ok {
		ti = *info
	}
	ts.mu.RUnlock()
	switch {
	case !ok:
		return "", "unknown token"
	case ti.revoked:
		return "", "token revoked"
	case !time.Now().Before(ti.expires):
		return "", "token expired"
	}
	return ti.table, ""
}

// expireAll makes every live token expire now and returns how many it hit.
func (ts *tokenStore) expireAll() int {
	now := time.Now()
	n := 0
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, v := range ts.m {
		if !v.revoked && now.Before(v.expires) {
			v.expires = now
			n++
		}
	}
	return n
}

// revokeAll revokes every live token and returns how many it hit.
func (ts *tokenStore) revokeAll() int {
	now := time.Now()
	n := 0
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, v := range ts.m {
		if !v.revoked && now.Before(v.expires) {
			v.revoked = true
			n++
		}
	}
	return n
}
