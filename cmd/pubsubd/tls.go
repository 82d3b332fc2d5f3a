package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gopherpubsub/pubsub/server"
)

// tlsSettings are the tls-* flags, named and read as Redis's directives.
type tlsSettings struct {
	port                  int
	certFile, keyFile     string
	caCertFile, caCertDir string
	authClients           string
	protocols             string
	sessionCaching        string
}

func (s *tlsSettings) register(fs *flag.FlagSet) {
	fs.IntVar(&s.port, "tls-port", 0, "TCP port for clients speaking TLS (0: none)")
	fs.StringVar(&s.certFile, "tls-cert-file", "", "the server's certificate (PEM)")
	fs.StringVar(&s.keyFile, "tls-key-file", "", "the server's private key (PEM)")
	fs.StringVar(&s.caCertFile, "tls-ca-cert-file", "", "the CAs that sign clients' certificates (PEM)")
	fs.StringVar(&s.caCertDir, "tls-ca-cert-dir", "", "a directory of CA certificates (PEM files)")
	fs.StringVar(&s.authClients, "tls-auth-clients", "yes", "whether clients must show a certificate: yes, no or optional")
	fs.StringVar(&s.protocols, "tls-protocols", "TLSv1.2 TLSv1.3", "the TLS versions accepted")
	fs.StringVar(&s.sessionCaching, "tls-session-caching", "yes", "whether clients may resume sessions: yes or no")
}

// from takes the tls-* directives the configuration gave.
func (s *tlsSettings) from(cfg *server.Config) {
	for name, field := range map[string]*string{
		"tls-cert-file": &s.certFile, "tls-key-file": &s.keyFile, "tls-ca-cert-file": &s.caCertFile,
		"tls-ca-cert-dir": &s.caCertDir, "tls-auth-clients": &s.authClients, "tls-protocols": &s.protocols,
		"tls-session-caching": &s.sessionCaching,
	} {
		if v, ok := cfg.Get(name); ok {
			*field = v
		}
	}
	if v, ok := cfg.Get("tls-port"); ok {
		s.port, _ = strconv.Atoi(v)
	}
}

// config returns the TLS configuration the flags describe, or nil if
// there is no TLS port, or why they do not make one.
func (s *tlsSettings) config() (*tls.Config, error) {
	if s.port == 0 {
		return nil, nil
	}
	if s.certFile == "" || s.keyFile == "" {
		return nil, errors.New("-tls-port needs -tls-cert-file and -tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls-cert-file, tls-key-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch strings.ToLower(s.authClients) {
	case "yes":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "no":
		cfg.ClientAuth = tls.NoClientCert
	default:
		return nil, fmt.Errorf("tls-auth-clients %q: want yes, no or optional", s.authClients)
	}
	if s.caCertFile != "" || s.caCertDir != "" {
		if cfg.ClientCAs, err = s.caPool(); err != nil {
			return nil, err
		}
	} else if cfg.ClientAuth != tls.NoClientCert {
		// Redis's words for the same refusal.
		return nil, errors.New("either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is enabled")
	}
	if cfg.MinVersion, cfg.MaxVersion, err = tlsVersions(s.protocols); err != nil {
		return nil, err
	}
	switch strings.ToLower(s.sessionCaching) {
	case "yes":
	case "no":
		cfg.SessionTicketsDisabled = true
	default:
		return nil, fmt.Errorf("tls-session-caching %q: want yes or no", s.sessionCaching)
	}
	return cfg, nil
}

// caPool reads the CA certificates of tls-ca-cert-file and of every
// file in tls-ca-cert-dir.
func (s *tlsSettings) caPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	files := []string{}
	if s.caCertFile != "" {
		files = append(files, s.caCertFile)
	}
	if s.caCertDir != "" {
		entries, err := os.ReadDir(s.caCertDir)
		if err != nil {
			return nil, fmt.Errorf("tls-ca-cert-dir: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(s.caCertDir, e.Name()))
			}
		}
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) && f == s.caCertFile {
			return nil, fmt.Errorf("tls-ca-cert-file %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

// tlsVersions reads tls-protocols: the versions named, from "TLSv1" to
// "TLSv1.3", as the least and the most accepted.
func tlsVersions(list string) (minVersion, maxVersion uint16, err error) {
	names := map[string]uint16{"tlsv1": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11, "tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13}
	for _, name := range strings.Fields(list) {
		v, ok := names[strings.ToLower(name)]
		if !ok {
			return 0, 0, fmt.Errorf("tls-protocols: unknown protocol %q", name)
		}
		if minVersion == 0 || v < minVersion {
			minVersion = v
		}
		maxVersion = max(maxVersion, v)
	}
	if minVersion == 0 {
		return 0, 0, errors.New("tls-protocols: no protocol given")
	}
	return minVersion, maxVersion, nil
}
