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
export PYZEROBUS_PYTHON := $(PY)

.PHONY: all deps go-deps py-deps build test test-go test-conformance test-py \
        demo bench cover proto lint clean

all: build

## deps: Go modules, pinned Go tools, and the Python virtualenv (.venv).
deps: go-deps py-deps

go-deps:
	$(GO) mod download
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(GO) mod download

py-deps: $(VENV)/.deps-stamp

$(VENV)/.deps-stamp: requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

## build: the zerobus-local server command into .bin/.
build: go-deps
	$(GO) build -o $(BIN)/zerobus-local ./tools/zerobus-local

## test: vet, Go tests with the race detector, conformance with Databricks' SDKs, pytest.
test: deps build test-go test-conformance test-py

test-go:
	$(GO) vet ./...
	$(GOTEST) -race -timeout 20m ./...

test-conformance:
	cd tests/go/conformance && $(CONFORMANCE_ENV) $(GO) vet ./... && $(CONFORMANCE_ENV) $(GOTEST) -race -timeout 10m ./...

test-py: py-deps build
	$(PY) -m pytest -q tests/py

## demo: start zerobus-local, send a sample dataset, show the rows that landed.
demo: deps build
	bash examples/demo.sh

## bench: benchmarks of the encoder, the server and the engine.
bench: go-deps
	$(GOTEST) -run '^$$' -bench . -benchmem ./zbwrap/...

## cover: statement coverage per Go package and per file.
cover: go-deps
	$(GOTEST) -coverprofile=$(CURDIR)/cover.out ./... | grep -v 'no test files'
	$(GO) tool cover -func=$(CURDIR)/cover.out | tail -1

## proto: regenerate the committed wire code (needs protoc: apt-get install protobuf-compiler).
proto:
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	$(GO) build -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	bash zbwrap/internal/wire/gen.sh

clean:
	rm -rf $(BIN) cover.out build dist
