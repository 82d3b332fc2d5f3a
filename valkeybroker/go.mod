module github.com/gopherpubsub/pubsub/valkeybroker

go 1.26.0

require (
	github.com/gopherpubsub/pubsub v0.0.0-00010101000000-000000000000
	github.com/valkey-io/valkey-go v1.0.80
	go.uber.org/goleak v1.3.0
)

require (
	github.com/gobwas/glob v1.1.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/gopherpubsub/pubsub => ../
