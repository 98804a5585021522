#!/usr/bin/env bash
# Runs the health checks against a real RabbitMQ (Debian's rabbitmq-server)
# on loopback: installs it where missing, with every listener on 127.0.0.1
# and without letting the package start it, then starts, tests and stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

if [[ ! -f /etc/rabbitmq/rabbitmq.conf ]] || ! grep -q lvsdr /etc/rabbitmq/rabbitmq.conf; then
	mkdir -p /etc/rabbitmq
	cat >/etc/rabbitmq/rabbitmq.conf <<'CONF'
# lvsdr tests: loopback only
listeners.tcp.default = 127.0.0.1:5672
management.tcp.ip = 127.0.0.1
management.tcp.port = 15672
distribution.listener.interface = 127.0.0.1
CONF
	printf 'NODENAME=rabbit@localhost\nERL_EPMD_ADDRESS=127.0.0.1\n' >/etc/rabbitmq/rabbitmq-env.conf
fi
if ! command -v rabbitmq-server >/dev/null; then
	echo "rabbitmq: installing rabbitmq-server"
	# The package would start the broker at once; it is started below instead.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends rabbitmq-server >/tmp/lvsdr-rabbitmq-apt.log 2>&1 ||
		{ apt-get update >>/tmp/lvsdr-rabbitmq-apt.log 2>&1 &&
			apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends rabbitmq-server >>/tmp/lvsdr-rabbitmq-apt.log 2>&1; } ||
		{ echo "rabbitmq: apt-get install rabbitmq-server failed; see /tmp/lvsdr-rabbitmq-apt.log" >&2; exit 1; }
	rm -f /usr/sbin/policy-rc.d
fi
rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
started=
if ! rabbitmqctl status >/dev/null 2>&1; then
	rabbitmq-server -detached
	started=1
fi
rabbitmqctl wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@localhost.pid >/dev/null
set +e
go test -count=1 -tags rabbitmq -run RabbitMQ -v ./healthcheck
rc=$?
set -e
[[ -n $started ]] && rabbitmqctl stop >/dev/null 2>&1
exit $rc
