# Label release station. `make run` and `make test` work on a fresh machine with Go installed.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
STATE ?= $(CURDIR)/.run
HTTP  ?= 127.0.0.1:8780
MQTT  ?= 127.0.0.1:18830
WEB   ?= 127.0.0.1:8781

.PHONY: all build cross test bench bench-e2e bench-e2e-stationd bench-fleet fuzz chaos run vet clean

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

# The station alone: stationd built as make dist builds it, but with the simulated panel (its taps
# come from the panel's page), runs as its own process against devcloud in the harness; its RSS is sampled through the taps and the long job.
bench-e2e-stationd:
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	CGO_ENABLED=0 $(GO) build -tags noxlsx -trimpath -ldflags "-s -w" -o "$$d/stationd" ./cmd/stationd; \
	$(GO) run ./cmd/bench-e2e -stationd "$$d/stationd" $(BENCH_E2E)

# Run every fuzz target briefly (FUZZTIME=5m for a longer run by hand). Minimisation is capped so
# a slow target (XLSX) does not spend the whole budget shrinking one input.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 20x -parallel 1 $$pkg; \
	  done; done

# The chaos harness at full size (about 1.5 h on a shared 2-core machine): kill -9, broker restarts,
# network cuts and stalls, printer faults (with and without a label counter), every label counted;
# writes docs/reliability.md after every iteration. CHAOSFLAGS=-kills=50 etc. for a smaller run.
CHAOSFLAGS ?=
chaos:
	$(GO) run ./cmd/chaos -out docs/reliability.md $(CHAOSFLAGS)

# devcloud + a simulated station (sim board, sim display at http://$(WEB), sim printer). The
# station waits for devcloud's metadata by itself, so both start at once.
run: build
	@mkdir -p $(STATE)
	@set -m; \
	$(BIN)/devcloud --http $(HTTP) --mqtt $(MQTT) --seed examples/devcloud-seed.json --store bolt:$(STATE)/devcloud.db & dc=$$!; \
	trap 'kill $$dc $$st 2>/dev/null; wait' EXIT INT TERM; \
	$(BIN)/stationd --sim --config examples/stationd.json --state $(STATE)/station \
	  --issuer http://$(HTTP) --broker mqtt://$(MQTT) --web $(WEB) & st=$$!; \
	wait $$st

clean:
	rm -rf $(BIN) .run $(DIST)

# Release builds: stationd and stationctl for every board, static (CGO off), stripped and stamped
# with the version, commit and date (`stationd --version`). Pi Zero/1: armv6; Pi 2/3/4 32-bit:
# armv7; 64-bit Pis: arm64; x86: amd64.
DIST    ?= dist
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP   := -X labelstation/internal/buildinfo.Version=$(VERSION) -X labelstation/internal/buildinfo.Commit=$(COMMIT) -X labelstation/internal/buildinfo.Date=$(DATE)
# Release builds leave out the simulated panel and printer (nosim) and the XLSX reader (noxlsx:
# the cloud delivers XLSX data as JSON records); make run and the tests build everything.
DISTTAGS  ?= nosim,noxlsx
DISTFLAGS := -trimpath -tags '$(DISTTAGS)' -ldflags "-s -w $(STAMP)"

.PHONY: dist deb test-arm
dist:
	@set -e; for t in linux/arm/6/armv6 linux/arm/7/armv7 linux/arm64//arm64 linux/amd64//amd64; do \
	  IFS=/ read -r os arch arm name <<<"$$t"; \
	  GOOS=$$os GOARCH=$$arch GOARM=$$arm CGO_ENABLED=0 $(GO) build $(DISTFLAGS) -o $(DIST)/linux-$$name/ ./cmd/stationd ./cmd/stationctl; \
	done
	@ls -l $(DIST)/linux-*/station* | awk '{printf "%-32s %6.1f MB\n", $$9, $$5/1e6}'

# Debian packages (arm64, armhf, amd64) from the dist binaries, built with nfpm as a Go tool.
# ISSUER and BROKER become the default config's cloud (make deb ISSUER=https://... BROKER=mqtts://...).
deb: dist
	VERSION=$(VERSION) DIST=$(DIST) GO=$(GO) scripts/deb.sh

# The station's unit tests under qemu-user for the Pi CPUs (ARCH="arm64 armv6" by default,
# as CI runs them). Installs qemu-user-static when run as root.
ARCH ?= arm64 armv6
test-arm:
	GO=$(GO) scripts/test-arm.sh $(ARCH)
