# Label release station. `make run` and `make test` work on a fresh machine with Go installed.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
STATE ?= $(CURDIR)/.run
HTTP  ?= 127.0.0.1:8780
MQTT  ?= 127.0.0.1:18830
WEB   ?= 127.0.0.1:8781

.PHONY: all build cross test bench bench-e2e bench-fleet fuzz run vet clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The daemon for the boards it runs on: Pi 3/4/5 and Zero 2 W (arm64), Zero and Pi 1 (ARMv6).
cross:
	GOOS=linux GOARCH=arm64 $(GO) build -o $(BIN)/linux-arm64/ ./cmd/stationd
	GOOS=linux GOARCH=arm GOARM=6 $(GO) build -o $(BIN)/linux-armv6/ ./cmd/stationd

vet:
	$(GO) vet ./...

# The test suite: unit, hardware-playback and end-to-end tests over loopback sockets, with the
# embedded broker. Tests that need Mosquitto (127.0.0.1:1883) or NATS (127.0.0.1:4222) skip with a
# message when those are not running.
test: vet
	$(GO) test -count=1 -timeout 20m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# 1,000 simulated stations (real MQTT clients with the station's config rules) behind the
# embedded broker; a group config is pushed and timed until all reported it applied.
bench-fleet:
	FLEET_BENCH_STATIONS=1000 $(GO) test -run '^$$' -bench GroupConfig -benchtime 3x ./devcloud/fleet/

# devcloud and a station with simulated hardware in one process over loopback: tap → printer
# latency, a long job's throughput, RSS and a stage breakdown (docs/performance.md). Extra flags
# through BENCH_E2E, e.g. BENCH_E2E='-sync-delay 5ms' for an SD card's fsync cost.
BENCH_E2E ?=
bench-e2e:
	$(GO) run ./cmd/bench-e2e $(BENCH_E2E)

# Run every fuzz target briefly (FUZZTIME=5m for a longer run by hand). Minimisation is capped so
# a slow target (XLSX) does not spend the whole budget shrinking one input.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 20x -parallel 1 $$pkg; \
	  done; done

# devcloud + a simulated station (sim board, sim display at http://$(WEB), sim printer). The
# station waits for devcloud's metadata by itself, so both start at once.
run: build
	@mkdir -p $(STATE)
	@set -m; \
	$(BIN)/devcloud --http $(HTTP) --mqtt $(MQTT) --seed examples/devcloud-seed.json & dc=$$!; \
	trap 'kill $$dc $$st 2>/dev/null; wait' EXIT INT TERM; \
	$(BIN)/stationd --sim --config examples/stationd.json --state $(STATE)/station \
	  --issuer http://$(HTTP) --broker mqtt://$(MQTT) --web $(WEB) & st=$$!; \
	wait $$st

clean:
	rm -rf $(BIN) .run
