package valkeybroker

// The package is rueidisbroker's with valkey-go's names: edit
// ../rueidisbroker and run go generate here.
//go:generate go run ./internal/fork
