#!/bin/sh
# run.sh SECONDS - run every built libFuzzer target tests/fuzz/fuzz_* (from
# the build directory) for SECONDS each, seeded with the files under
# tests/data/*/ of the source tree. Findings are kept as
# tests/fuzz/<target>-crash-*, -leak-*, -timeout-*, -oom-*; the output of
# each target is in tests/fuzz/<target>.log. Exits non-zero if a target
# crashes, leaks, hangs or runs out of memory, or if none is built.

secs=${1:-60}
case $secs in
'' | *[!0-9]*) echo "usage: $0 SECONDS" >&2; exit 2 ;;
esac
srcdir=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
out=tests/fuzz
mkdir -p "$out" || exit 2

failed=0
ran=0
for t in "$out"/fuzz_*; do
	case $t in
	*.c | *.o | *.sh | *.log | *-crash-* | *-leak-* | *-timeout-* | *-oom-* | *-slow-unit-*) continue ;;
	esac
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=${t##*/}
	work=$(mktemp -d) || exit 2
	seeds=$(mktemp -d) || exit 2
	# seed corpus: every test file, named after its directory to stay unique
	for f in "$srcdir"/tests/data/*/*; do
		[ -f "$f" ] || continue
		d=${f%/*}
		cp "$f" "$seeds/${d##*/}-${f##*/}"
	done
	echo "$name: ${secs}s, $(ls "$seeds" | wc -l) seeds"
	"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$out/$name-" "$work" "$seeds" \
		>"$out/$name.log" 2>&1
	rc=$?
	ran=$((ran + 1))
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		echo "$name: FAILED (exit $rc); last lines of $out/$name.log:"
		tail -n 40 "$out/$name.log"
	else
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log")
		echo "$name: ok, ${runs:-?} runs, corpus $(ls "$work" | wc -l) units"
	fi
	rm -rf "$work" "$seeds"
done

if [ $ran -eq 0 ]; then
	echo "no fuzz target built in $out (run 'make fuzz')" >&2
	exit 1
fi
[ $failed -eq 0 ]
