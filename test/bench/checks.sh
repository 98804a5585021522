#!/usr/bin/env bash
# What the health checks cost: 10,000 TCP checks at a 1 s interval against
# listeners on loopback, and 1,000 in the same run as the peer to compare
# with (this machine is shared and noisy: read the ratio per check, not the
# absolute figures across runs). See test/bench/checks/ for the figures.
#
# Runs as root, in a network namespace of its own: the checks' TIME_WAIT
# sockets and any sysctl stay out of the host's, and every connection goes to
# 127.0.0.0/8 of that namespace and nowhere else.
#
# After each window the same program runs the floor: the bare syscalls of
# one check back to back against the same listeners; the checker's CPU per
# probe is printed as a ratio to it (x_floor). Then an overload run: the
# checker on GOMAXPROCS=1 with a goroutine spinning beside it, to show that
# a starved checker stretches its intervals (lag_ms) and fails nothing.
#
# Environment: SIZES (default "10000 1000"), ROUNDS (each size once per
# round, in turn; default 1), DURATION (measurement window, default 30s),
# INTERVAL (default 1s), FLOOR (floor run, default 10s; 0 skips it),
# OVERLOAD (checks of the overload run, default 10000; 0 skips it),
# PROFILE_DIR (CPU profiles of each window there).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
sizes=${SIZES:-10000 1000}
rounds=${ROUNDS:-1}
duration=${DURATION:-30s}
interval=${INTERVAL:-1s}
floor=${FLOOR:-10s}
overload=${OVERLOAD:-10000}
ns=lvsdr-bench-checks

if [[ $EUID -ne 0 ]]; then
	echo "checks.sh: needs root for its network namespace" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$GO" build -o "$work/checks" ./test/bench/checks

# A fresh namespace for each run: the TIME_WAIT sockets of one run (up to
# tcp_max_tw_buckets) would otherwise weigh on the connects of the next.
# Only a namespace this script created is deleted; one left by another run
# is not ours.
created=
trap '[[ -z $created ]] || ip netns del $ns; rm -rf "$work"' EXIT
run() {
	if ! ip netns add $ns; then
		echo "checks.sh: could not create netns $ns (another run? remove it with: ip netns del $ns)" >&2
		exit 1
	fi
	created=1
	ip -n $ns link set lo up
	ip netns exec $ns env ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} "$work/checks" "$@" | tee -a "$work/results"
	ip netns del $ns
	created=
}

echo "$(nproc) cores, $(uname -r), $("$GO" version | cut -d' ' -f3); window $duration, interval $interval"
for ((r = 1; r <= rounds; r++)); do
	for n in $sizes; do
		args=(-checks "$n" -interval "$interval" -duration "$duration" -floor "$floor")
		if [[ -n ${PROFILE_DIR:-} ]]; then
			mkdir -p "$PROFILE_DIR"
			args+=(-cpuprofile "$PROFILE_DIR/cpu-$n-$r.prof")
		fi
		echo "== round $r: $n checks"
		run "${args[@]}"
	done
	if [[ $overload != 0 ]]; then
		echo "== round $r: overload, $overload checks on GOMAXPROCS=1 beside a spinning goroutine"
		GOMAXPROCS=1 run -checks "$overload" -interval "$interval" -duration "$duration" -floor 0 -busy 1
	fi
done

# One row per run, then the cost per check of each size against the first:
# the comparison made in one run, which the noise of the machine affects
# least.
echo
echo "== summary"
awk '
	/^checks=/ { delete v }
	{ for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2) v[kv[1]] = kv[2] }
	/^tw_sockets=/ {
		rows[++nr] = sprintf("%6d %4s %8.0f %8d %5d %5d %12.1f %16.1f %8s %7s %13.1f %7.1f %7.1f %8.1f %11.1f %9.1f", v["checks"], v["busy_goroutines"] > 0 ? "yes" : "no",
			v["probes_per_s"], v["failures"], v["downs"], v["up"],
			v["checker_cpu_core_pct"], v["checker_cpu_us_per_probe"], v["floor_cpu_us_per_probe"] == "" ? "-" : v["floor_cpu_us_per_probe"],
			v["checker_vs_floor"] == "" ? "-" : v["checker_vs_floor"], v["listener_cpu_core_pct"], v["rss_mib"], v["rss_kib_per_check"],
			v["lag_ms"], v["latency_p50_ms"], v["rest_machine_pct"])
		n[nr] = v["checks"]; us[nr] = v["checker_cpu_us_per_probe"]; kib[nr] = v["rss_kib_per_check"]; busy[nr] = v["busy_goroutines"]
	}
	END {
		print "checks over probes/s failures downs    up checker%core checker_us/probe floor_us x_floor listener%core rss_MiB KiB/chk  lag_ms lat_p50_ms rest%mach"
		for (i = 1; i <= nr; i++) print rows[i]
		for (i = 2; i <= nr; i++) if (n[i] != n[1] && us[i] > 0 && kib[i] > 0 && busy[i] == 0)
			printf "%d vs %d checks: CPU per probe x%.2f, memory per check x%.2f\n", n[1], n[i], us[1] / us[i], kib[1] / kib[i]
	}' "$work/results"
