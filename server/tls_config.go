package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
)

// The TLS configuration a Server makes of its tls-* parameters, as
// Redis's tlsConfigure: ServeTLS(ln, nil) serves with it, CheckConfig
// checks it, and CONFIG SET of a tls-* parameter makes it anew for the
// handshakes that follow (or fails, changing nothing, as Redis does).

// tlsFromParams makes the TLS configuration the tls-* parameters describe;
// get returns a parameter's value as CONFIG GET shows it.
func tlsFromParams(get func(string) string) (*tls.Config, error) {
	certFile, keyFile := get("tls-cert-file"), get("tls-key-file")
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs tls-cert-file and tls-key-file")
	}
	cert, err := loadKeyPair(certFile, keyFile, get("tls-key-file-pass"))
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch v := lower(get("tls-auth-clients")); v {
	case "yes", "":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "optional":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "no":
		cfg.ClientAuth = tls.NoClientCert
	default:
		return nil, fmt.Errorf("tls-auth-clients %q: want yes, no or optional", v)
	}
	caFile, caDir := get("tls-ca-cert-file"), get("tls-ca-cert-dir")
	switch {
	case caFile != "" || caDir != "":
		if cfg.ClientCAs, err = caPool(caFile, caDir); err != nil {
			return nil, err
		}
	case cfg.ClientAuth != tls.NoClientCert:
		// Redis's words for the same refusal.
		return nil, errors.New("either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is enabled")
	}
	if cfg.MinVersion, cfg.MaxVersion, err = tlsVersions(get("tls-protocols")); err != nil {
		return nil, err
	}
	if cfg.CipherSuites, err = tlsCiphers(get("tls-ciphers")); err != nil {
		return nil, err
	}
	if err := checkCipherSuites13(get("tls-ciphersuites")); err != nil {
		return nil, err
	}
	if f := get("tls-dh-params-file"); f != "" {
		if err := checkDHParams(f); err != nil {
			return nil, err
		}
	}
	switch v := lower(get("tls-session-caching")); v {
	case "yes", "":
	case "no":
		cfg.SessionTicketsDisabled = true
	default:
		return nil, fmt.Errorf("tls-session-caching %q: want yes or no", v)
	}
	return cfg, nil
}

// loadKeyPair reads a certificate and its key, the key decrypted with
// pass if it is encrypted (PKCS #8 with PBES2, as OpenSSL writes it, or
// the older PEM encryption).
func loadKeyPair(certFile, keyFile, pass string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-key-file: %w", err)
	}
	if block, _ := pem.Decode(keyPEM); block != nil {
		var der []byte
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY":
			if der, err = decryptPKCS8(block.Bytes, pass); err != nil {
				return tls.Certificate{}, fmt.Errorf("tls-key-file: %w", err)
			}
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		case x509.IsEncryptedPEMBlock(block): //nolint:staticcheck // the older encryption, insecure but still written
			if der, err = x509.DecryptPEMBlock(block, []byte(pass)); err != nil { //nolint:staticcheck
				return tls.Certificate{}, fmt.Errorf("tls-key-file: %w (tls-key-file-pass)", err)
			}
			keyPEM = pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls-cert-file, tls-key-file: %w", err)
	}
	return cert, nil
}

// PKCS #8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018): PBKDF2 with an
// HMAC-SHA hash, then AES in CBC mode.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

type pbes2Params struct {
	KeyDerivation pkix.AlgorithmIdentifier
	Encryption    pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// maxPBKDF2Iterations bounds the work a key file may ask for.
const maxPBKDF2Iterations = 10_000_000

func decryptPKCS8(der []byte, pass string) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted key: only PBES2 is supported, not %v", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	if !params.KeyDerivation.Algorithm.Equal(oidPBKDF2) {
		return nil, errors.New("encrypted key: only PBKDF2 is supported")
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(params.KeyDerivation.Parameters.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	if kdf.Iterations < 1 || kdf.Iterations > maxPBKDF2Iterations {
		return nil, fmt.Errorf("encrypted key: %d PBKDF2 iterations", kdf.Iterations)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("encrypted key: unsupported PBKDF2 hash %v", alg)
	}
	var keyLen int
	switch alg := params.Encryption.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("encrypted key: unsupported cipher %v (AES-CBC is)", alg)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Encryption.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("encrypted key: bad IV")
	}
	key, err := pbkdf2.Key(prf, pass, kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	block, _ := aes.NewCipher(key)
	data := info.Data
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted key: bad length")
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize || pad > len(out) {
		return nil, errors.New("encrypted key: wrong tls-key-file-pass")
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errors.New("encrypted key: wrong tls-key-file-pass")
		}
	}
	out = out[:len(out)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(out); err != nil {
		return nil, errors.New("encrypted key: wrong tls-key-file-pass")
	}
	return out, nil
}

// caPool reads the CA certificates of tls-ca-cert-file and of every file
// in tls-ca-cert-dir.
func caPool(caFile, caDir string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	var files []string
	if caFile != "" {
		files = append(files, caFile)
	}
	if caDir != "" {
		entries, err := os.ReadDir(caDir)
		if err != nil {
			return nil, fmt.Errorf("tls-ca-cert-dir: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(caDir, e.Name()))
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(b) && f == caFile {
			return nil, fmt.Errorf("tls-ca-cert-file %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}

// tlsVersions reads tls-protocols: the versions named, from "TLSv1" to
// "TLSv1.3", as the least and the most accepted; none named means Redis's
// default, TLSv1.2 and TLSv1.3.
func tlsVersions(list string) (minVersion, maxVersion uint16, err error) {
	names := map[string]uint16{"tlsv1": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11, "tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13}
	if strings.TrimSpace(list) == "" {
		return tls.VersionTLS12, tls.VersionTLS13, nil
	}
	for _, name := range strings.Fields(list) {
		v, ok := names[lower(name)]
		if !ok {
			return 0, 0, fmt.Errorf("tls-protocols: unknown protocol %q", name)
		}
		if minVersion == 0 || v < minVersion {
			minVersion = v
		}
		maxVersion = max(maxVersion, v)
	}
	return minVersion, maxVersion, nil
}

// opensslSuites are the TLS 1.2 cipher suites crypto/tls offers, by
// OpenSSL's names, which tls-ciphers uses.
var opensslSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// tlsCiphers reads tls-ciphers, an OpenSSL cipher list for TLS 1.2 and
// older: the suites it names, in its order; DEFAULT, HIGH, ALL and SECURE
// stand for crypto/tls's own choice, as does an empty list; exclusions
// (!x, -x) and reorderings (+x) are accepted and have nothing to take
// out, as crypto/tls offers none of what they name (aNULL, MD5, RC4,
// ...). A name it does not know is refused, as OpenSSL refuses a list
// that selects nothing.
func tlsCiphers(list string) ([]uint16, error) {
	var ids []uint16
	chosen := false
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		switch {
		case name[0] == '!' || name[0] == '-' || name[0] == '+':
		case name == "DEFAULT" || name == "HIGH" || name == "ALL" || name == "SECURE":
			chosen = true
		default:
			id, ok := opensslSuites[name]
			if !ok {
				return nil, fmt.Errorf("tls-ciphers: %q is not a cipher suite crypto/tls offers", name)
			}
			ids = append(ids, id)
		}
	}
	if chosen || len(ids) == 0 {
		return nil, nil // crypto/tls's own choice
	}
	return ids, nil
}

// checkCipherSuites13 checks tls-ciphersuites, TLS 1.3's suites: each
// must be one crypto/tls has. It offers all three and lets no one choose,
// so the list is checked and kept, not applied.
func checkCipherSuites13(list string) error {
	for _, name := range strings.Split(list, ":") {
		switch name {
		case "", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256":
		default:
			return fmt.Errorf("tls-ciphersuites: %q is not a TLS 1.3 cipher suite crypto/tls offers", name)
		}
	}
	return nil
}

// checkDHParams checks tls-dh-params-file holds Diffie-Hellman parameters,
// as Redis does when it loads them; crypto/tls has no finite-field DHE
// suites, so they are not used.
func checkDHParams(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("tls-dh-params-file: %w", err)
	}
	if block, _ := pem.Decode(b); block == nil || block.Type != "DH PARAMETERS" {
		return fmt.Errorf("tls-dh-params-file %s: no PEM DH PARAMETERS in it", file)
	}
	return nil
}
