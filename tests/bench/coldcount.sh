#!/bin/sh
# coldcount.sh - what a message finds cold in the caches when threads take
# turns, as under a milter's load: callgrind's cache simulation over turns
# (THREADS threads scanning one message file in turn, MESSAGES scans),
# with a 32 KB first level for instructions and for data and a 512 KB
# second level. Prints per message: instructions, first-level misses
# (instruction reads, data reads, data writes), second-level misses (the
# same three), and the functions with the most second-level misses. Only
# the per-message path is counted (bw_msg_new, the feed, bw_msg_free), as
# perfcount.sh does. Deterministic: the same build and message give the
# same counts on any machine, busy or not. Builds nothing.
#
# usage: tests/bench/coldcount.sh TURNS MESSAGE.eml [THREADS [MESSAGES [TOP]]]
#   TURNS: tests/bench/turns of an -O2 build without sanitizers
#   THREADS (default 8, as make bench's connections), MESSAGES (160),
#   TOP (15)
# Environment: BW_CONF, PHRASES as for perfcount.sh.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 TURNS MESSAGE.eml [THREADS [MESSAGES [TOP]]]" >&2
	exit 2
fi
turns=$1
msg=$2
threads=${3:-8}
msgs=${4:-160}
top=${5:-15}
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
phrases=${PHRASES:-$srcdir/conf/unsubscribe-phrases}

[ -x "$turns" ] || { echo "coldcount: $turns is not executable" >&2; exit 2; }
[ -r "$msg" ] || { echo "coldcount: cannot read $msg" >&2; exit 2; }

name=coldcount
. "$srcdir/tests/bench/count-setup.sh"

if ! valgrind --tool=callgrind --cache-sim=yes \
    --I1=32768,8,64 --D1=32768,8,64 --LL=524288,8,64 \
    --callgrind-out-file="$tmp/cg" \
    --toggle-collect=bw_msg_new --toggle-collect=bw_msg_connect \
    --toggle-collect=bw_msg_force_bulk --toggle-collect=bw_msg_feed_file \
    --toggle-collect=bw_msg_free \
    "$turns" "$conf" "$msg" "$threads" "$msgs" >"$tmp/out" 2>&1; then
	echo "coldcount: the run failed:" >&2
	cat "$tmp/out" >&2
	exit 2
fi
# events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
callgrind_annotate "$tmp/cg" 2>/dev/null | grep -m 1 'PROGRAM TOTALS' | tr -d ',' |
	awk -v n="$msgs" -v m="$msg" -v t="$threads" '{
		printf "message:             %s\n", m
		printf "threads in turn:     %d, %d messages\n", t, n
		printf "instructions:        %d per message\n", $1 / n
		printf "first-level misses:  %d (instructions %d, data read %d, data write %d)\n",
		    ($7 + $9 + $11) / n, $7 / n, $9 / n, $11 / n
		printf "second-level misses: %d (instructions %d, data read %d, data write %d)\n",
		    ($13 + $15 + $17) / n, $13 / n, $15 / n, $17 / n
	}'
echo
echo "top functions by second-level misses, over all the messages:"
echo "    total    instr data-read data-write  function"
callgrind_annotate --auto=no --show=ILmr,DLmr,DLmw --threshold=100 "$tmp/cg" 2>/dev/null |
	awk '/^-+$/ { sep++; next } sep >= 3' | sed 's/([^)]*)//g; s/ \[.*$//' |
	awk 'NF >= 4 && $1 ~ /^[0-9,.]+$/ && $2 ~ /^[0-9,.]+$/ && $3 ~ /^[0-9,.]+$/ {
		for (i = 1; i <= 3; i++) { gsub(",", "", $i); if ($i == ".") $i = 0 }
		name = $4
		for (i = 5; i <= NF; i++) name = name " " $i
		if (name != "PROGRAM TOTALS") printf "%9d %8d %9d %10d  %s\n", $1 + $2 + $3, $1, $2, $3, name
	}' | sort -rn | head -n "$top"
