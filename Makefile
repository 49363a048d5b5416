# Build, test, demo and benchmark the ИДК agent, collector and simulator.
# `make demo` and `make test` are the two commands in the README.

GO          ?= go
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEMO_DIR    ?= $(CURDIR)/.demo
SCANS       ?= 20
BENCH_DIR   ?= $(CURDIR)/.bench
PKGS        := ./...

FUZZTIME    ?= 30s
# How long the fuzzer may shrink an input it found: its default, 60 s,
# runs past a short -fuzztime and then fails the run with "context deadline
# exceeded" although nothing crashed (seen with FuzzParseForm at 10 s).
FUZZMIN     ?= 1s

CHAOS_DIR   ?= $(CURDIR)/.chaos
CHAOS_FLAGS ?=
CHAOS_REGION_FLAGS ?=
LINKBENCH_FLAGS ?=
PEERBENCH_FLAGS ?=
FLEETBENCH_FLAGS ?=
BACKENDSBENCH_FLAGS ?=
SERVICES_DIR ?= $(CURDIR)/.services

.PHONY: all build windows demo test lint generate bench fuzz chaos chaos-hostile chaos-region clean services services-stop

all: build

build:
	$(GO) build -o $(BIN)/ ./agent/cmd/idk-agent ./collector/cmd/idk-collector ./simulator/cmd/idk-sim

# Scanner PCs are often Windows: the agent must always build for it.
windows:
	GOOS=windows GOARCH=amd64 $(GO) build -o $(BIN)/windows/ ./agent/cmd/idk-agent

# A simulated scanner ships $(SCANS) scans with realistic 20-60 MB images
# to a local collector, and every file is verified by SHA-256.
demo: build
	rm -rf $(DEMO_DIR)
	$(BIN)/idk-sim demo -bin $(BIN) -dir $(DEMO_DIR) -scans $(SCANS)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# The whole suite, with the race detector. End-to-end tests build the
# binaries themselves.
test: lint windows
	$(GO) test -race -timeout 15m $(PKGS)
	# The end-to-end suite again with the collectors on a region's shared
	# backends, PostgreSQL and S3 (make services): skipped where they are
	# not running, except under CI=true, where that fails.
	IDK_E2E_BACKENDS=region $(GO) test -race -timeout 15m -count=1 ./simulator/harness/

# The shared backends a region's collectors can use (docs/scale-out.md):
# PostgreSQL and versitygw (S3) on loopback, for the tests and benchmarks
# that run on them. Then: . $(SERVICES_DIR)/env && make test
services:
	$(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" deploy/dev/services start $(SERVICES_DIR)

services-stop:
	deploy/dev/services stop $(SERVICES_DIR)

# Fuzz the decoders that read untrusted input: the wire protocol (what any
# client could send), the file-name rule both ends share (what any scanner
# folder may hold) and the registration form (what the scanner PC holds).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzSafeName$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./protocol/
	$(GO) test -run '^$$' -fuzz '^FuzzParseForm$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMIN) ./agent/layout/cargoriw/

# SIGKILLs both daemons, cuts the link and fills the disk while 1000 scans
# are written; prints scans written, stored, lost, duplicated, corrupted.
chaos: build
	rm -rf $(CHAOS_DIR)
	$(BIN)/idk-sim chaos -bin $(BIN) -dir $(CHAOS_DIR) $(CHAOS_FLAGS)
	rm -rf $(CHAOS_DIR)

# The same with a hostile agent in the fleet: a second ИДК's stolen
# certificate forges the honest one's scans all along; the honest ИДК's
# evidence must come through byte for byte.
chaos-hostile:
	$(MAKE) chaos CHAOS_FLAGS="-hostile $(CHAOS_FLAGS)"

# Two collectors of a region on PostgreSQL and S3 (make services; . .services/env):
# the serving one is SIGKILLed while agents ship and breaches fall due;
# prints takeover times; nothing lost, every breach recorded once.
chaos-region: build
	rm -rf $(CURDIR)/.chaos-region
	$(BIN)/idk-sim chaos-region -bin $(BIN) -dir $(CURDIR)/.chaos-region $(CHAOS_REGION_FLAGS)
	rm -rf $(CURDIR)/.chaos-region

generate:
	$(GO) generate ./protocol/...

# The loopback throughput and memory figures (idk-sim bench). Then P1, the
# same pipeline against bare quic-go, scp, rsync over ssh and HTTPS PUT to
# nginx on loopback (idk-sim peerbench; needs the Debian packages
# openssh-client, openssh-server, rsync and nginx, or PEERBENCH_FLAGS=
# "-peers quic"). Then the link
# benchmark: the agent and the collector through the relay at
# 100 ms RTT and 20 Mbit/s, the agent's window against one file at a time,
# as fractions of the link's cap (4 × 20 MiB images at 0, 0.1 and 1 % loss,
# 2000 × 100 KiB files, and P2: forms saved while a 1 GiB image is in
# flight); about 20 minutes. LINKBENCH_FLAGS narrows it, e.g.
# LINKBENCH_FLAGS="-cases images -losses 0 -docs 500" (idk-sim linkbench -h).
# Then P5: 300 virtual ИДК against one collector for 10 minutes at 10× a
# busy day (idk-sim fleetbench; FLEETBENCH_FLAGS="-duration 3m" shortens it).
# Then the collector on each backend, embedded (bbolt, local files) and a
# region's (PostgreSQL, S3 on versitygw: make services first, or its lines
# say "not measured"): throughput and collector CPU per GB, side by side.
# Then the agent's memory with 100 000 files waiting (about 4 minutes).
# Then the collector's start-up time with 1, 30 and 365 days of events
# (50 ИДК, 300 scans a day): it must not grow with history. Generating the
# year takes minutes and a few GB under $$TMPDIR.
bench: build
	rm -rf $(BENCH_DIR)
	$(BIN)/idk-sim bench -bin $(BIN) -dir $(BENCH_DIR)
	$(BIN)/idk-sim peerbench -bin $(BIN) -dir $(BENCH_DIR)/peer $(PEERBENCH_FLAGS)
	$(BIN)/idk-sim linkbench -bin $(BIN) -dir $(BENCH_DIR)/link $(LINKBENCH_FLAGS)
	$(BIN)/idk-sim fleetbench -bin $(BIN) -dir $(BENCH_DIR)/fleet $(FLEETBENCH_FLAGS)
	$(BIN)/idk-sim backendsbench -bin $(BIN) -dir $(BENCH_DIR)/backends $(BACKENDSBENCH_FLAGS)
	rm -rf $(BENCH_DIR)
	$(GO) test -run '^$$' -bench '^BenchmarkAgentBacklogRSS$$' -benchtime 1x -timeout 1h ./simulator/harness/
	$(GO) test -run '^$$' -bench '^BenchmarkStartup$$' -benchtime 1x -timeout 3h ./collector/ingest/
	$(GO) test -run '^$$' -bench '^Benchmark(Workbook|MonthReport)$$' -benchtime 1x -timeout 1h ./collector/report/

clean:
	rm -rf $(BIN) $(DEMO_DIR) $(BENCH_DIR) $(CHAOS_DIR)
