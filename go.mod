module github.com/gopherpubsub/pubsub

go 1.26.0

require (
	github.com/gobwas/glob v1.1.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
