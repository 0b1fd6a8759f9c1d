# Tandem's developer commands. `make test` is the whole test suite, and is
# exactly what CI runs (.ci/run).

GO ?= go
PKGS_RACE := ./auth/... ./coalesce/... ./proposer/... ./fsm/... ./store/... ./consensus/... ./api/... ./node/... ./client/... ./bench/... ./pki/... ./multiplex/...

.PHONY: build test check unit integration race bench chaos clean

build:
	CGO_ENABLED=0 $(GO) build -o bin/tandem ./cmd/tandem

# The whole suite: static checks, unit tests with the race detector on the
# concurrent packages, then the multi-process cluster tests.
test: check race unit integration

check:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$fmt" ]; then echo "gofmt would change:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests/)

race:
	$(GO) test -race -count=1 $(PKGS_RACE)
	# The contract engine's concurrent paths (the whole package under the
	# race detector takes minutes: WebAssembly limits tests are slow there).
	$(GO) test -race -count=1 -run 'TestEngine|TestConcurrentCalls' ./contract/...

integration:
	$(GO) test -count=1 -timeout 20m ./tests/...

# A long chaos run (docs/reliability.md): every fault, partitions included,
# shares DURATION. The partition fault needs root, ip and nft.
DURATION ?= 30m
chaos:
	$(GO) test -count=1 -timeout 0 -v ./tests/chaos -run . -args -duration=$(DURATION)

# The core benchmark of docs/benchmarks.md (about 3 minutes).
bench:
	scripts/bench-core.sh

clean:
	rm -rf bin tandem-dev-data
