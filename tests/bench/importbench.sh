#!/bin/sh
# importbench.sh - how fast "bulkwardenctl consent import" loads consent
# records into a fresh LMDB store: generates N rows of CSV (awk; distinct
# recipients over 1,000 domains and 50 senders, in no key order), imports
# them with a temporary configuration (MapSize 8G), and prints the rows per
# minute, the CPU time and the size of the store. The generation is not
# timed. The target is 1,000,000 rows per minute or more.
#
# usage: tests/bench/importbench.sh [N]      (default 1000000)
# Run from the build tree, or set BW_CTL. Environment:
#   BW_CTL        the bulkwardenctl to measure (default milter/bulkwardenctl
#                 of $top_builddir, else of the current directory)
#   BENCH_KEEP=1  keep the run directory (config, input, store)
# Nothing is asserted about speed: it fails only when the import fails or
# does not import every row.
set -u

n=${1:-1000000}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
BW_CTL=${BW_CTL:-$top_builddir/milter/bulkwardenctl}

case $n in
'' | *[!0-9]*) echo "importbench: N must be a number of rows" >&2; exit 2 ;;
esac
[ -x "$BW_CTL" ] || { echo "importbench: $BW_CTL is not built" >&2; exit 2; }

run=$(mktemp -d -t bulkwarden-importbench.XXXXXX) || exit 2
cleanup() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "importbench: run directory kept: $run" >&2
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$run/store"
cat >"$run/bulkwarden.conf" <<EOF
# importbench: a fresh store, large enough for the rows
Store lmdb:$run/store
MapSize 8G
PhraseFile $top_srcdir/conf/unsubscribe-phrases
EOF

echo "importbench: generating $n consent rows"
awk -v n="$n" 'BEGIN {
	print "sender,recipient,granted_at,method,source,evidence,source_ip"
	split("double-opt-in single-opt-in import api", m, " ")
	for (i = 1; i <= n; i++) {
		d = i % 1000
		printf "sender%d,user%d.%d@domain%d.example,2024-%02d-%02dT%02d:%02d:%02dZ,%s," \
		    "https://domain%d.example/signup,\"form 7, ticket %d\",192.0.2.%d\n",
		    i % 50, i, (i * 7919) % 100003, d, 1 + i % 12, 1 + i % 28, i % 24, i % 60,
		    (i * 7) % 60, m[1 + i % 4], d, i, i % 250 + 1
	}
}' >"$run/consent.csv" || { echo "importbench: cannot write the input" >&2; exit 1; }
bytes=$(wc -c <"$run/consent.csv")

# GNU time (Debian package "time") gives the CPU time and peak memory
timer=
[ -x /usr/bin/time ] && timer="/usr/bin/time -f %U_%S_%M -o $run/time"
echo "n/a_n/a_0" >"$run/time"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
$timer "$BW_CTL" -c "$run/bulkwarden.conf" consent import "$run/consent.csv" >"$run/report" 2>&1
rc=$?
t1=$(date +%s.%N)
if [ "$rc" -ne 0 ]; then
	echo "importbench: FAIL: import exited $rc" >&2
	cat "$run/report" >&2
	exit 1
fi
count=$("$BW_CTL" -c "$run/bulkwarden.conf" dump | grep -c '^{"table":"consent"')
if [ "$count" -ne "$n" ]; then
	echo "importbench: FAIL: $count records in the store, $n rows imported" >&2
	exit 1
fi
store_kb=$(du -sk "$run/store" | cut -f1)
IFS=_ read -r user sys maxrss <"$run/time"
awk -v n="$n" -v t0="$t0" -v t1="$t1" -v u="$user" -v s="$sys" -v kb="$store_kb" \
    -v bytes="$bytes" -v rss="$maxrss" 'BEGIN {
	w = t1 - t0
	printf "rows        %d (%.1f MB of CSV)\n", n, bytes / 1e6
	printf "wall        %.2f s\n", w
	printf "cpu         %s s user, %s s system\n", u, s
	printf "rate        %.0f rows/minute (target 1000000)\n", n / w * 60
	printf "store       %.1f MB (%.0f bytes per record)\n", kb / 1024, kb * 1024 / n
	if (rss > 0)
		printf "max RSS     %.1f MB\n", rss / 1024
}'
