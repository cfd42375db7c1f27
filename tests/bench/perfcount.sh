#!/bin/sh
# perfcount.sh - instructions per message of the policy engine, counted by
# callgrind over "bulkwardenctl scan" of one message file scanned 1 and 21
# times; the difference divided by 20 is the per-message cost without the
# start-up (config and phrase loading, first use of iconv). Only the
# milter's per-message path is counted (bw_msg_new, the feed of headers and
# body, end of message, bw_msg_free), not the scan report. Builds nothing.
#
# usage: tests/bench/perfcount.sh BULKWARDENCTL MESSAGE.eml [TOP]
#   TOP: how many functions to list (default 25)
# Environment: BW_CONF a configuration file to use instead of the one of
# tests/bench/run.sh (policy defaults); PHRASES the phrase file of that
# one (default: conf/unsubscribe-phrases of the source dir); BW_CHUNK=N
# feeds the body in pieces of N bytes.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BULKWARDENCTL MESSAGE.eml [TOP]" >&2
	exit 2
fi
ctl=$1
msg=$2
top=${3:-25}
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
phrases=${PHRASES:-$srcdir/conf/unsubscribe-phrases}

[ -x "$ctl" ] || { echo "perfcount: $ctl is not executable" >&2; exit 2; }
[ -r "$msg" ] || { echo "perfcount: cannot read $msg" >&2; exit 2; }
case $ctl in /*) ;; *) ctl=$(pwd)/$ctl ;; esac
case $msg in /*) ;; *) msg=$(pwd)/$msg ;; esac

name=perfcount
. "$srcdir/tests/bench/count-setup.sh"

# run N: callgrind over a scan of the file N times; prints total Ir
run() {
	n=$1
	i=0
	set --
	while [ $i -lt "$n" ]; do
		set -- "$@" "$msg"
		i=$((i + 1))
	done
	if [ -n "${BW_CHUNK:-}" ]; then
		set -- --chunk "$BW_CHUNK" "$@"
	fi
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$n" \
	    --toggle-collect=bw_msg_new --toggle-collect=bw_msg_connect \
	    --toggle-collect=bw_msg_force_bulk --toggle-collect=bw_msg_feed_file \
	    --toggle-collect=bw_msg_free \
	    "$ctl" -c "$conf" scan --bulk --format json "$@" \
	    >"$tmp/out.$n" 2>"$tmp/err.$n"
	rc=$?
	if [ $rc -gt 1 ]; then
		echo "perfcount: scan failed (exit $rc):" >&2
		cat "$tmp/err.$n" >&2
		exit 2
	fi
	sed -n 's/^summary: *//p' "$tmp/cg.$n"
}

ir1=$(run 1) || exit 2
ir21=$(run 21) || exit 2
per=$(( (ir21 - ir1) / 20 ))
size=$(wc -c <"$msg")
echo "message:           $msg ($size bytes)"
echo "verdict:           $(sed -n 's/.*"verdict":"\([a-z]*\)".*/\1/p' "$tmp/out.1" | head -1)"
echo "instructions, 1:   $ir1"
echo "instructions, 21:  $ir21"
echo "per message:       $per"
echo "per byte:          $(awk -v p="$per" -v s="$size" 'BEGIN { printf "%.1f", p / s }')"
echo
echo "top functions (self cost over the 21 scans; divide by 21 for one message):"
callgrind_annotate --threshold=100 "$tmp/cg.21" 2>/dev/null |
	awk '/^-+$/ { sep++; next } sep >= 3 && NF >= 2 && $1 ~ /^[0-9,]+$/' |
	sed 's/ (.*)$//' | head -n "$top"
