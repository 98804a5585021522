# lvsdr: the two commands of the README are `make lab` and `make test`.
GO ?= go
BIN := bin

.PHONY: build demo lab test unit e2e e2e-failover rabbitmq vrrp-interop bgp-interop vet bench bench-checks bench-kernel clean

# --version of both binaries (and lvsdr_build_info) name the commit built:
# the linker stamps package internal/version; unstamped builds say "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/lvsdr/lvsdr/internal/version.Version=$(VERSION) -X github.com/lvsdr/lvsdr/internal/version.Commit=$(COMMIT)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/director ./cmd/realserver

# Shows the director at work on the example topology without touching this
# host's network or kernel: validation, then the operations it would run
# against an empty IPVS table.
demo: build
	$(BIN)/director validate --config deploy/examples/rabbitmq.yaml
	$(BIN)/director apply --dry-run --empty-kernel --config deploy/examples/rabbitmq.yaml

# The same on a real kernel: a VM with IPVS, a client, a director and three
# stand-in RabbitMQ nodes; fails one node and brings it back.
lab:
	test/e2e/lab.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) vet -tags rabbitmq ./...
	$(GO) vet -tags vrrpinterop ./vrrp/
	$(GO) vet -tags gendocs ./cmd/... ./internal/...

unit:
	$(GO) test -race -count=1 ./...

# The real binaries on a real kernel: a VM booting Debian's kernel with IPVS
# (test/vm), namespaces for a client, a director and three nodes.
e2e:
	test/e2e/run.sh

# The failover of a pair of directors measured at VRRP v3 100 ms, beside
# keepalived's own pair (VRRP, and its lvs_sync_daemon on the connection
# sync tests), and a real RabbitMQ client across a failover, in
# the VM: they need a machine quiet enough for sub-second timers and
# RabbitMQ's start in an emulated VM (make test leaves these out).
e2e-failover:
	LVSDR_E2E_SKIP= LVSDR_E2E_SYNC_ADVERT= LVSDR_E2E_ARGS="-test.run ^(TestHA|TestSyncFailover|TestSyncKeepalivedPair)" test/e2e/run.sh

# The AMQP and HTTP checks against a real RabbitMQ on loopback, stopped and
# started under them.
rabbitmq:
	test/rabbitmq/run.sh

# lvsdr's VRRP against Debian's keepalived 2.2.7, both ways, v2 and v3,
# multicast and unicast, in network namespaces of this host (no IPVS needed).
vrrp-interop:
	test/vrrp/run.sh

# The BGP engine against Debian's bird2 with ECMP, in network namespaces of
# this host (no IPVS needed).
bgp-interop:
	test/bgp/run.sh

# Every test: formatting and vet, the unit tests, the checks against a real
# RabbitMQ, VRRP against keepalived and BGP against bird on this host, the
# Debian package on a clean system, then the end-to-end suite.
test: vet unit rabbitmq vrrp-interop bgp-interop deb-test e2e

# The hot paths at 1,000, 10,000 and 40,000 real servers in two shapes, in
# ns per real server: the figure must stay flat as the size grows.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./ipvsctl/ ./director/ ./topology/

# 10,000 TCP checks at a 1 s interval against loopback listeners, in a
# network namespace of its own; CPU share and memory, with 1,000 as the peer,
# the floor of bare syscalls and an overload run. Then, in the VM, 1,000
# checks side by side with keepalived's TCP_CHECK.
bench-checks:
	test/bench/checks.sh
	test/bench/checks/vm.sh

# In the VM, one run: ipvsadm -R, keepalived and the director (run start,
# SIGHUP of one weight, apply, status) on the same table, as ratios; two
# shapes of 10,000 real servers (LVSDR_BENCH_REAL_SERVERS: 1000, 40000).
bench-kernel:
	test/bench/kernel.sh

clean:
	rm -rf $(BIN)

# The Debian package of both binaries, the units and the examples, in dist/
# (deploy/deb/build.sh; VERSION=... overrides the version from git describe).
.PHONY: deb deb-test
deb:
	GO=$(GO) deploy/deb/build.sh

# Installs that package on a clean Debian bookworm chroot (debootstrap,
# cached in /var/cache/lvsdr-deb), checks it, removes and purges it. Root.
deb-test:
	test/deb/run.sh

# The section 8 man pages of both commands in .cache/man (the package ships
# them gzipped): each main package built with -tags gendocs writes the pages
# of its own command tree (internal/gendocs says why); and lvsdr-topology(5),
# the topology file, made from docs/configuration.md.
.PHONY: man
man:
	rm -rf .cache/man
	$(GO) run -tags gendocs ./cmd/director -man .cache/man -topology docs/configuration.md
	$(GO) run -tags gendocs ./cmd/realserver -man .cache/man
