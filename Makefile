# saasgate build, run and test entry points. CI calls `.ci/run`, which ensures Redis answers and
# then runs `make test`.

GO        ?= go
BIN       := bin/saasgate
# The version `saasgate version` prints, stamped into Caddy's own CustomVersion (Caddy prepends it
# to its module version). The Dockerfile takes it as a build argument (no .git in the image).
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Tools the build installs are pinned to exact versions and installed into TOOLS_BIN (never onto
# the PATH of the machine), each with its own rule:
#   GOBIN=$(TOOLS_BIN) $(GO) install <module>/<cmd>@<exact version>
# Recipes call them as $(TOOLS_BIN)/<name>; tests find stripe-mock there (internal/testenv).
TOOLS_BIN := $(abspath bin/tools)
STATICCHECK_VERSION := v0.8.2
# stripe-mock's objects follow Stripe API 2023-10-16, the version stripe-go v76 speaks (SPEC §1).
STRIPE_MOCK_VERSION := v0.162.0

# Integration tests run the built gateway as a subprocess (internal/testenv.StartSaasgate).
export SAASGATE_BIN := $(abspath $(BIN))

.PHONY: all build run test fuzz bench bench-store fmt vet lint tools clean

all: build

# Always invoke the Go toolchain: its build cache makes an unchanged build cheap, and make's own
# timestamps cannot see changes in dependencies.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X github.com/caddyserver/caddy/v2.CustomVersion=$(VERSION)" -o $(BIN) ./cmd/saasgate

run: build
	./$(BIN) run --config Caddyfile

# -p 1: Caddy's running config is process-global and integration packages start Caddy servers
# and gateway subprocesses; packages running side by side would fight over ports and state.
test: build lint tools
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 30m ./...

# Every fuzz target of the module, found in the test files (so a new one runs without an edit
# here), for FUZZTIME each; `make test` runs only their seeds (testdata/fuzz/<Target>/ and
# f.Add), as plain `go test` does. A crasher goes into testdata/fuzz/<Target>/: commit it with
# the fix, and it stays a seed. FUZZMINIMIZETIME bounds the minimizing of each new input (Go's
# default is 60s): the webhook target's coverage depends on what the store already holds, so
# its inputs rarely reproduce exactly and would take the whole FUZZTIME being minimized.
FUZZTIME         ?= 10s
FUZZMINIMIZETIME ?= 2s

fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for name in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
			echo "$(GO) test -run '^$$' -fuzz '^$$name$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$dir"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$dir; \
		done; \
	done

# The side-by-side benchmark of SPEC §9 (bare reverse_proxy against the full pipeline, real
# Redis), then the Go micro-benchmarks of the request path. Needs Redis like the tests.
bench: build
	$(GO) build -o bin/saasbench ./cmd/saasbench
	./bin/saasbench -bin $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./control/limit ./control/token ./control/tenant ./caddymodule

# The embedded store along the tail of tenants: tenant creation, signup and cache-miss lookup
# times at 1,000, 5,000 and 10,000 tenants on a fresh embedded store (README, "Embedded store
# limits"). Takes several minutes; STOREBENCH_FLAGS="-marks 1000,5000" to stop earlier.
bench-store:
	$(GO) build -o bin/storebench ./cmd/storebench
	./bin/storebench $(STOREBENCH_FLAGS)

fmt:
	$(GO) fmt ./...

vet:
	$(GO) vet ./...

tools: $(TOOLS_BIN)/stripe-mock

$(TOOLS_BIN)/stripe-mock:
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

$(TOOLS_BIN)/staticcheck:
	GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(TOOLS_BIN)/staticcheck
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above are not formatted"; exit 1; }
	$(TOOLS_BIN)/staticcheck ./...

clean:
	rm -rf bin
