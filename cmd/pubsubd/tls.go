package main

import "flag"

// registerTLSFlags registers the tls-* flags, named as Redis's
// directives. A flag given becomes its directive (flagDirectives), so the
// Server listens on the TLS port and makes its TLS configuration of them
// as of a redis.conf's.
func registerTLSFlags(fs *flag.FlagSet) {
	fs.Int("tls-port", 0, "TCP port for clients speaking TLS (0: none)")
	fs.String("tls-cert-file", "", "the server's certificate (PEM)")
	fs.String("tls-key-file", "", "the server's private key (PEM)")
	fs.String("tls-key-file-pass", "", "the password of an encrypted tls-key-file")
	fs.String("tls-ca-cert-file", "", "the CAs that sign clients' certificates (PEM)")
	fs.String("tls-ca-cert-dir", "", "a directory of CA certificates (PEM files)")
	fs.String("tls-auth-clients", "yes", "whether clients must show a certificate: yes, no or optional")
	fs.String("tls-protocols", "TLSv1.2 TLSv1.3", "the TLS versions accepted")
	fs.String("tls-ciphers", "", "TLS 1.2 cipher suites, by OpenSSL's names, colon-separated (\"\": crypto/tls's choice)")
	fs.String("tls-session-caching", "yes", "whether clients may resume sessions: yes or no")
}
