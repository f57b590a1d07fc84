package zbwrap

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// A server certificate the client does not trust fails the first attempt,
// without retries, whether the stream call or the token request meets it.
func TestUntrustedCertificateFailsAtOnce(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithTLS())
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	common := []Option{WithEndpoint(srv.Endpoint()), WithTableName(testTable),
		WithRetryMaxAttempts(5), WithRetryBaseDelay(5 * time.Millisecond), WithRetryMaxDelay(5 * time.Millisecond)}
	for name, opts := range map[string][]Option{
		"stream call, unknown authority": {WithHeadersProvider(staticHeaders{srv: srv})},
		"stream call, wrong host name": {WithHeadersProvider(staticHeaders{srv: srv}),
			WithTLSConfig(&tls.Config{RootCAs: srv.CertPool(), ServerName: "zerobus.invalid"})},
		"token request, unknown authority": {WithUnityCatalogURL(srv.WorkspaceURL()),
			WithClientID(testID), WithClientSecret(testSecret)},
	} {
		t.Run(name, func(t *testing.T) {
			w, err := New(context.Background(), Config{}, append(common, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			res, err := w.SendBatch(context.Background(), rec)
			if !errors.Is(err, ErrConnection) || !errors.Is(err, ErrUntrustedCertificate) || IsRetryable(err) {
				t.Fatalf("untrusted server: %v (retryable %v)", err, IsRetryable(err))
			}
			var cve *tls.CertificateVerificationError
			if !errors.As(err, &cve) {
				t.Errorf("the verification error is not in the chain: %v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "not trusted") || !strings.Contains(msg, "tls_ca_file") || !strings.Contains(msg, "WithRootCAs") {
				t.Errorf("message does not say how to trust the server: %s", msg)
			}
			if res.FailedRows[0].MayHaveLanded {
				t.Error("rows never sent reported as possibly landed")
			}
			if st := w.Stats(); st.OpenFailures != 1 || st.CallsOpened != 0 {
				t.Fatalf("stats %+v: want one attempt", st)
			}
		})
	}
}
