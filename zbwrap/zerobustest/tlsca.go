package zerobustest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certAuthority is a CA made at start and the server certificate it signed.
type certAuthority struct {
	caPEM []byte
	pool  *x509.CertPool
	leaf  tls.Certificate
}

// newCertAuthority makes a self-signed ECDSA P-256 CA and a server
// certificate for 127.0.0.1, ::1 and localhost signed by it.
func newCertAuthority() (*certAuthority, error) {
	now := time.Now()
	caKey, err1 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, err2 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("tls: generate keys: %w", err)
	}
	skid := make([]byte, 20) // any unique id will do (RFC 5280 §4.2.1.2)
	_, _ = rand.Read(skid)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "zerobus-local CA", Organization: []string{"zerobus-local"}},
		SubjectKeyId:          skid,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"zerobus-local"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	caDER, err1 := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	der, err2 := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("tls: create certificates: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &certAuthority{
		caPEM: caPEM,
		pool:  pool,
		leaf:  tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)) // never fails with crypto/rand
	return n
}

// serverConfig is the TLS configuration of a listener offering protos.
func (ca *certAuthority) serverConfig(protos ...string) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.leaf},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   protos,
	}
}

// LocalTLS returns the TLS configuration of a server for 127.0.0.1, ::1 and
// localhost, with a certificate signed by a fresh CA, and a pool holding
// that CA for its clients: for tests and benchmarks that need TLS without a
// Zerobus server.
func LocalTLS() (server *tls.Config, roots *x509.CertPool, err error) {
	ca, err := newCertAuthority()
	if ca != nil { // nil only when the key or certificate could not be made
		server, roots = ca.serverConfig(), ca.pool
	}
	return server, roots, err
}
