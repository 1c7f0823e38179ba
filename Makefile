# StreamSpace Enterprise. `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

BIN            := bin/streamspace
CACHE          := $(or $(STREAMSPACE_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/streamspace)
WORKFLOWCHECK_VERSION := v0.6.0
WORKFLOWCHECK  := $(CACHE)/bin/workflowcheck-$(WORKFLOWCHECK_VERSION)/workflowcheck
GO_TEST_FLAGS  ?= -count=1 -timeout 20m

.PHONY: help build run test k8s-bins lint bench bench-api bench-sessions bench-webhooks bench-security clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

build: ## build bin/streamspace
	go build -o $(BIN) ./cmd/streamspace

run: build ## run the whole local stack (PostgreSQL, Temporal + Web UI, local Kubernetes, worker, API) on embedded defaults
	$(BIN) dev

test: build ## run unit, integration and end-to-end tests (starts a private PostgreSQL and Temporal dev server; builds the Kubernetes binaries once)
	$(BIN) testenv -- go test $(GO_TEST_FLAGS) ./...

k8s-bins: ## build the local Kubernetes binaries into ~/.cache/streamspace/k8s-v1.37.2 (once, ~10 min on 2 cores, with progress; run and test do it too)
	go run ./internal/kubestack/cmd/k8sbins

bench: build ## run the outbox relay benchmark against a private PostgreSQL and Temporal dev server
	$(BIN) testenv -- go test -run '^$$' -bench Relay -benchtime 1x -timeout 20m ./worker/

bench-api: build ## load-test authenticated GET /api/me with wrk (apt-get install wrk)
	$(BIN) testenv -- scripts/bench-api.sh

bench-sessions: build ## start 200 sessions through the API on 20 simulated nodes; time to Running, memory; then 50 beside 10,000 failing deliveries
	$(BIN) testenv -- go test -run '^$$' -bench 'SessionStart200|SessionStartBesideDeadEndpoint' -benchtime 1x -timeout 20m ./cmd/streamspace/

bench-webhooks: build ## deliver events to 10 signed webhooks: deliveries/s, p50/p99 commit to receipt, memory per 10,000 pending retries
	$(BIN) testenv -- go test -run '^$$' -bench WebhookDeliveries -benchtime 1x -timeout 60m ./worker/

bench-security: build ## the IP allowlist check with 10,000 entries (ns/op), and sign-in with TOTP under load (logins/s, p50/p99)
	go test -run '^$$' -bench . -benchmem ./internal/ipset/
	$(BIN) testenv -- go test -run '^$$' -bench LoginTOTP -benchtime 400x ./server/

lint: $(WORKFLOWCHECK) ## gofmt, go vet and Temporal's workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(WORKFLOWCHECK) ./workflows/...

$(WORKFLOWCHECK):
	mkdir -p $(dir $@)
	GOBIN=$(abspath $(dir $@)) go install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

clean: ## remove build output (keeps .data/, the dev stack's state)
	rm -rf bin
