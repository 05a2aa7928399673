# otpscope — the two commands a user needs are `make run` and `make test`.
# Both run `setup` first; setup is idempotent (a second run does nothing).

CHDB_DIR := $(CURDIR)/.cache/chdb
CONSOLE_VENDOR_DIR := $(CURDIR)/.cache/console
PROMTOOL_DIR := $(CURDIR)/.cache/promtool
ALERTMANAGER_DIR := $(CURDIR)/.cache/alertmanager
export OTPSCOPE_PROMTOOL ?= $(PROMTOOL_DIR)/promtool
export OTPSCOPE_ALERTMANAGER ?= $(ALERTMANAGER_DIR)/alertmanager
export OTPSCOPE_CHDB_LIB ?= $(CHDB_DIR)/libchdb.so

GO ?= go
GOTEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: setup setup-test run test build bench vet fmt chaos

## setup: Go modules, the embedded ClickHouse library (libchdb.so from npm) and
## the console's pinned chart library (checked against the committed copy).
setup:
	$(GO) mod download
	CHDB_DIR=$(CHDB_DIR) bash scripts/setup-chdb.sh
	CONSOLE_VENDOR_DIR=$(CONSOLE_VENDOR_DIR) bash scripts/setup-console.sh

## setup-test: setup, and what only the tests need: Prometheus' promtool (from
## Debian's package; go test ./deploy/ runs the alerting rules' unit tests
## with it) and Alertmanager (built from its pinned release; the reporter's
## alerts are posted to a real one).
setup-test: setup
	PROMTOOL_DIR=$(PROMTOOL_DIR) bash scripts/setup-promtool.sh
	ALERTMANAGER_DIR=$(ALERTMANAGER_DIR) GO=$(GO) bash scripts/setup-alertmanager.sh

## build: every binary into ./bin.
build:
	$(GO) build -o bin/ ./cmd/...

## run: the all-in-one on embedded defaults with the tyntec simulator (Ctrl-C stops it).
## The demo drops 5% of the simulator's webhooks (the poller's recovered and
## unrecoverable figures) and decides resends by an example policy in dry-run
## (the resends panels), so every dashboard panel and console page has data.
## ARGS go to otpscope too: make run ARGS="--listen 127.0.0.1:9080 --admin-listen 127.0.0.1:9081"
run: setup
	$(GO) run ./cmd/otpscope --simulate --simulate-drop-webhooks 0.05 --resend-policy docs/examples/resend-policy.json \
		--alert-channel-min-delivery-rate SILENT=0.6,PUSH=0.6 $(ARGS)

## test: the whole suite against the real NATS server and the real ClickHouse engine.
test: setup-test
	$(GO) vet ./...
	$(GO) test $(GOTEST_FLAGS) ./...

bench: setup
	$(GO) run ./bench/loadgen

fmt:
	gofmt -w $$(git ls-files '*.go')

## chaos: kill -9, SIGTERM, NATS restarts and full disks under load; every
## acknowledged webhook must end in ClickHouse exactly once (root for tmpfs).
chaos: setup
	$(GO) test -count=1 -v -timeout 20m -run TestChaos ./cmd/otpscope/
