// Package deploy holds no code: deploy/ is the Dockerfile, docker-compose
// files, Kubernetes manifests and the NATS and ClickHouse cluster
// configuration. Its tests (deploy_test.go) check what can be checked without
// a container engine: that the files parse, reference files that exist, and
// agree with the binaries' flags and ports, and that the ClickHouse cluster
// schema is accepted by the embedded engine as far as it allows.
package deploy
