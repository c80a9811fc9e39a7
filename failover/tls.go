package failover

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadTLS builds the mutual-TLS configuration of an endpoint from PEM
// files: this server's certificate and key, and the CA that signed the
// partner's certificate. The partner is trusted when its certificate
// chains to that CA (host names are not checked: the pair's own CA is the
// trust anchor, and the secondary also checks the primary's address).
// The primary is the TLS client, the secondary the server; give both
// certificates the serverAuth and clientAuth uses (or none) so roles can
// be swapped.
func LoadTLS(certFile, keyFile, caFile string, role Role) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading failover certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading failover CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("failover CA %s holds no PEM certificate", caFile)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if role == Secondary {
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		return cfg, nil
	}
	// The primary verifies the chain itself, without a host name.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the partner presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("partner certificate: %w", err)
		}
		return nil
	}
	return cfg, nil
}
