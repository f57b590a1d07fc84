# pyzerobus build. `make demo` and `make test` work on a fresh machine: they
# install what is missing first (`make deps`).

SHELL      := /bin/bash
GO         ?= go
PYTHON     ?= python3
VENV       := $(CURDIR)/.venv
PY         := $(VENV)/bin/python
BIN        := $(CURDIR)/.bin
GOTEST     ?= $(GO) test
# The conformance module pulls Databricks' pure-Go SDK, whose checksum is not
# in the public checksum database.
CONFORMANCE_ENV := GONOSUMDB=github.com/databricks GOFLAGS=-mod=mod

export PATH := $(BIN):$(PATH)
export ZEROBUS_LOCAL_BIN := $(BIN)/zerobus-local
export OTLP_SINK_BIN := $(BIN)/otlp-sink
export PYZEROBUS_PYTHON := $(PY)

.PHONY: all deps go-deps py-deps py-build build test lint test-go test-conformance test-py \
        tox demo py-bench bench-spark bench bench-go soak cover proto lint clean wheel wheels notices notices-check pyenv-check audit

all: build

## deps: Go modules, pinned Go tools, and the Python virtualenv (.venv).
deps: go-deps py-deps

go-deps:
	$(GO) mod download
	cd internal/tools && $(GO) mod download
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(GO) mod download

py-deps: $(VENV)/.deps-stamp

$(VENV)/.deps-stamp: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

## py-build: build the pyzerobus package (Go engine through gopy, zerobus-local; hatch_build.py) and install it into .venv.
py-build: $(VENV)/.pyzerobus-stamp

PY_PKG_SOURCES := pyproject.toml hatch_build.py go.mod go.sum internal/tools/go.mod $(shell find bindings zbwrap tools/zerobus-local pyzerobus pybuild \
	\( -name '*.go' -o -name '*.py' \) -not -name '*_test.go' -not -path '*/_native/*' 2>/dev/null)

$(VENV)/.pyzerobus-stamp: $(VENV)/.deps-stamp $(PY_PKG_SOURCES)
	$(PY) -m pip install -q --no-build-isolation --no-deps --force-reinstall .
	touch $@

## build: the zerobus-local server, the otlp-sink receiver and the soak sender commands into .bin/.
build: go-deps
	$(GO) build -o $(BIN)/zerobus-local ./tools/zerobus-local
	$(GO) build -o $(BIN)/otlp-sink ./tools/otlp-sink
	$(GO) build -o $(BIN)/soak-sender ./tools/soak/sender

## test: lint, Go tests with the race detector, conformance with Databricks' SDKs, pytest (with a
## 60-second soak, tests/py/test_soak.py); the coverage gates fail it when a Go file or package,
## or a Python file, is under 90%.
test: deps build lint test-go test-conformance test-py

# The coverage gate (tools/cover/covergate.py, standard library only): every Go
# file and package and every Python file at COVER_MIN% or more, generated code
# left out, lower floors only as reasoned entries of tools/cover/allow.txt.
COVER_MIN  := 90
COVER_GATE := $(PYTHON) tools/cover/covergate.py --min $(COVER_MIN) --allow tools/cover/allow.txt

## lint: go vet (also for darwin and windows), gofmt, staticcheck, ruff check and format, mypy,
## THIRD_PARTY_NOTICES up to date (notices-check), then audit.
# bindings needs cgo, so the cross-platform vet leaves it out (the wheel
# builds compile it per platform).
PY_LINT := pyzerobus pybuild hatch_build.py tools tests examples
lint: go-deps py-deps notices-check
	$(GO) vet ./...
	GOOS=darwin $(GO) vet $$($(GO) list ./... | grep -v /bindings)
	GOOS=windows $(GO) vet $$($(GO) list ./... | grep -v /bindings)
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt -l:"; echo "$$bad"; exit 1; fi
	cd internal/tools && $(GO) build -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	$(BIN)/staticcheck ./...
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(BIN)/staticcheck ./...
	$(PY) -m ruff check $(PY_LINT)
	$(PY) -m ruff format --check $(PY_LINT)
	$(PY) -m mypy
	$(MAKE) --no-print-directory audit

## audit: govulncheck (pinned in internal/tools) on the Go module and pip-audit (requirements-audit.txt) on
## the pinned requirements-*.txt, each only where its database answers, "skipped: ... unreachable"
## otherwise (tools/audit/audit.sh).
audit: go-deps py-deps
	cd internal/tools && $(GO) build -o $(BIN)/govulncheck golang.org/x/vuln/cmd/govulncheck
	bash tools/audit/audit.sh $(BIN)/govulncheck $(PY)

## test-go: Go tests with the race detector; the same run writes cover.out (every
## package's coverage from every test binary) for the gate.
test-go:
	$(GO) vet ./...
	$(GOTEST) -race -timeout 20m -coverpkg=./... -coverprofile=$(CURDIR)/cover.out ./...
	$(COVER_GATE) go $(CURDIR)/cover.out

test-conformance:
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(GO) vet ./... && $(CONFORMANCE_ENV) $(GOTEST) -race -timeout 10m ./...

test-py: py-deps build py-build
	# From tests/py, so that the package under test is the one installed in .venv.
	cd tests/py && $(PY) -m pytest -q . --cov=pyzerobus --cov-config=$(CURDIR)/pyproject.toml \
		--cov-report=term-missing:skip-covered --cov-report=json:$(CURDIR)/build/coverage-py.json \
		--cov-fail-under=$(COVER_MIN)
	$(COVER_GATE) py $(CURDIR)/build/coverage-py.json

# CPython 3.9-3.13 as pyenv installs them (the newest patch release of each,
# under $PYENV_ROOT, default ~/.pyenv), for make tox and make wheels, which
# fail first, naming the missing ones (pyenv-check).
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
PYENV_MINORS   := 9 10 11 12 13
PYENV_PYTHONS  := $(strip $(foreach v,$(PYENV_MINORS),$(lastword $(wildcard $(PYENV_VERSIONS)/3.$(v).*/bin/python3))))
PYENV_MISSING  := $(strip $(foreach v,$(PYENV_MINORS),$(if $(wildcard $(PYENV_VERSIONS)/3.$(v).*/bin/python3),,3.$(v))))

pyenv-check:
	@if [ -n "$(PYENV_MISSING)" ]; then \
		echo "CPython $(PYENV_MISSING) missing under $(PYENV_VERSIONS): make tox and make wheels need 3.9-3.13 (pyenv install <version>)"; \
		exit 1; fi

## tox: pytest on each CPython 3.9-3.13 under ~/.pyenv, ruff and mypy (tox.ini); fails if one is
## missing. TOX_ARGS passes arguments on (TOX_ARGS="-e py39" runs one).
tox: pyenv-check py-deps build
	$(PY) -m tox --discover $(PYENV_PYTHONS) $(TOX_ARGS)

## wheel: a manylinux_2_28 wheel for .venv's CPython into dist/ (cgo with zig cc, tools/wheels/build.sh),
## then auditwheel show on it; SMOKE=1 also smoke-tests it in a clean virtualenv without Go.
WHEEL_ENV = AUDITWHEEL=$(VENV)/bin/auditwheel PYTOOLS=$(PY) $(if $(ZIG_TARGET),ZIG_TARGET=$(ZIG_TARGET))
wheel: py-deps
	$(PY) -m pip install -q -r requirements-wheel.txt
	$(WHEEL_ENV) bash tools/wheels/build.sh $(PY)

## wheels: the wheels of CPython 3.9-3.13 (pyenv's), each smoke-tested in a clean virtualenv without Go
## (with ZIG_TARGET=aarch64-linux-gnu.2.28: cross-built, shown and repaired, not smoke-tested).
wheels: pyenv-check py-deps
	$(PY) -m pip install -q -r requirements-wheel.txt
	$(WHEEL_ENV) SMOKE=1 bash tools/wheels/build.sh $(PYENV_PYTHONS)

## demo: start zerobus-local, send a sample dataset, show the rows that landed.
demo: deps build py-build
	bash examples/demo.sh

## py-bench: pyzerobus beside Databricks' Python SDK (tools/bench/bench.py) in three worlds: loopback,
## the service's time to durability alone, and its latency and quotas (--profile databricks); tables
## go to build/py-bench/. PY_BENCH_ARGS replaces the rows, sizes and rounds.
PY_BENCH_ARGS ?= --rows 2000000 --sizes 220 --rounds 3
py-bench: py-deps build py-build
	for world in "" "--profile databricks --ack-latency-only" "--profile databricks"; do \
		$(PY) tools/bench/bench.py --only pyzerobus --only "Python SDK" --out build/py-bench $$world $(PY_BENCH_ARGS) || exit 1; \
	done

## soak: Go and Python senders (sync and async, several streams) push unique rows into zerobus-local
## for SOAK_DURATION (default 10m; e.g. SOAK_DURATION=60s) while it injects random faults and is
## SIGKILLed and restarted; then the Delta table is checked against what each send reported and a
## summary printed (exit 1 if an acknowledged row is missing or a row never sent landed).
## SOAK_JSON=FILE also writes the summary as JSON; SOAK_SEED picks the faults and batch sizes.
SOAK_DURATION ?= 10m
soak: py-deps build py-build
	$(PY) tools/soak/soak.py run --duration $(SOAK_DURATION) $(if $(SOAK_JSON),--json $(SOAK_JSON))

## bench-spark: df.write.format("zerobus") on local[2] vs one wrapper on the driver vs df.write.parquet.
bench-spark: py-deps build py-build
	$(PY) tools/bench/sparkbench.py

## bench: one table of every way to put the same rows into one zerobus-local (tools/bench/bench.py),
## also written with a chart to docs/bench/; BENCH_ARGS passes flags (--quick, --profile databricks, --durable, --rows N).
BENCH_ARGS ?=
bench: py-deps build py-build
	$(PY) tools/bench/bench.py $(BENCH_ARGS)

## bench-go: Go benchmarks of the encoder, the server and the engine, then the engine beside Databricks' pure-Go SDK.
bench-go: go-deps
	$(GOTEST) -run '^$$' -bench . -benchmem ./zbwrap/...
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(GOTEST) -run '^$$' -bench 'BenchmarkIngest|BenchmarkStreamMemory' -benchtime 2s .

## cover: statement coverage of every Go file and package and every Python file, counted as
## the gates of test-go and test-py count it (without the race detector, so faster); fails as they do.
cover: go-deps build py-build
	$(GOTEST) -coverpkg=./... -coverprofile=$(CURDIR)/cover.out ./... | grep -v 'no test files'
	cd tests/py && $(PY) -m pytest -q . --cov=pyzerobus --cov-config=$(CURDIR)/pyproject.toml \
		--cov-report=term:skip-covered --cov-report=json:$(CURDIR)/build/coverage-py.json
	$(COVER_GATE) --all go $(CURDIR)/cover.out; go=$$?; \
	$(COVER_GATE) --all py $(CURDIR)/build/coverage-py.json && exit $$go

## notices: regenerate THIRD_PARTY_NOTICES (the licenses of the Go modules the wheel links;
## tools/notices/notices.py). notices-check fails when the committed file is stale.
notices: go-deps
	$(PYTHON) tools/notices/notices.py
notices-check: go-deps
	$(PYTHON) tools/notices/notices.py --check

## proto: regenerate the committed wire code (needs protoc: apt-get install protobuf-compiler).
proto:
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	cd internal/tools && $(GO) build -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	bash zbwrap/internal/wire/gen.sh

clean:
	rm -rf $(BIN) cover.out build dist
