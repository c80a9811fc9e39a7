# hook6 — build, run and test. `make test` is what CI runs (.ci/run).
#
#   make build   bin/hook6d and bin/hook6ctl
#   make plugins the example plugins, built and packed into bin/plugins
#   make generate  the plugin protocol's gRPC code, from its .proto
#   make run     build, then serve with the embedded default config (state and
#                control socket under ./var; port 547 needs root)
#   make test    install the Debian packages the tests need when missing, then
#                go vet, the unit tests and the end-to-end tests (as root)
#   make lint    gofmt, go vet and staticcheck

SHELL := /bin/bash
GO    ?= go

# Debian packages the tests drive: DHCPv6 clients (dhclient, dhcpcd, dhcp6c),
# the relay (dhcrelay), perfdhcp (kea-admin), Kea as reference server, slapd
# for the LDAP tests, and the tools the network-namespace lab runs.
DEBS := isc-dhcp-client dhcpcd-base wide-dhcpv6-client isc-dhcp-relay \
	kea-admin kea-dhcp6-server slapd ldap-utils iproute2 procps

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run deps test vet unit e2e lint clean plugins generate

build:
	$(GO) build -o bin/ ./cmd/...

# The example plugins, built and packed as an operator would install them:
# bin/plugins/NAME-VERSION-OS-ARCH.tar.gz for `hook6ctl plugin install`.
plugins: build
	mkdir -p bin/plugins
	$(GO) build -o bin/plugins/remoteid-prefix ./examples/plugins/remoteid-prefix
	bin/hook6ctl plugin pack bin/plugins/remoteid-prefix --name remoteid-prefix --version 1.0.0 --out bin/plugins

# Regenerates the plugin protocol's Go code from hooks/plugin/proto/extension.proto
# (needs protoc: apt-get install -y protobuf-compiler).
generate:
	$(GO) generate ./hooks/plugin/proto

run: build
	mkdir -p var
	bin/hook6d

# Installs only when a package is missing, so reruns cost a dpkg query.
deps:
	@missing=(); for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$$p"); \
	done; \
	if [ $${#missing[@]} -eq 0 ]; then \
		echo "deps: all Debian packages present"; \
	else \
		echo "deps: installing $${missing[*]}"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=300 update -qq && \
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$${missing[@]}"; \
	fi

# Unit and e2e tests both run, so one CI log shows every failure.
test: deps vet
	@rc=0; $(MAKE) --no-print-directory unit || rc=1; $(MAKE) --no-print-directory e2e || rc=1; exit $$rc

vet:
	$(GO) vet ./...

unit:
	$(GO) test -timeout 15m $$($(GO) list ./... | grep -v '/e2e')

# Network namespaces need root; -p 1 keeps the labs from competing for the
# two cores (perfdhcp and timers are in the tests).
e2e:
	@if [ "$$(id -u)" != 0 ]; then echo "e2e: the end-to-end tests need root (network namespaces)"; exit 1; fi
	$(GO) test -count=1 -p 1 -timeout 20m ./e2e/...

# hook6 against Kea (kea-dhcp6) in a network-namespace lab, stepped up with
# perfdhcp, then hook6 at 1,000,000 leases: a table on stdout, JSON in
# bench/results/ (docs/benchmarks.md). Needs root; about 11 minutes. Knobs,
# e.g.: make bench BENCH_FLAGS='-bench.runs=kea,hook6 -bench.step=8s -bench.leases=0'
.PHONY: bench
bench: deps
	@if [ "$$(id -u)" != 0 ]; then echo "bench: the lab needs root (network namespaces)"; exit 1; fi
	cd bench && $(GO) test -tags labbench -run '^TestBench$$' -timeout 40m -args $(BENCH_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
