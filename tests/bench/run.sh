#!/bin/sh
# tests/bench/run.sh - the benchmark behind "make bench": bwbench drives the
# no-op baseline milter and bulkwarden with the same messages over the same
# number of connections and prints msgs/s, p50 and p99 latency, the
# milter's CPU time per message and the bulkwarden/noop ratio of msgs/s;
# then the store's lookup time against the same store, and htmlbench, when
# it and data/*.html are there. See README.
#
# bulkwarden runs with every check on: the unsubscribe rules, consent
# (RequireConsent), the sender's state and its message and recipient rates
# (limits too high to reach), and the delivered counts of the complaint
# window. Its store holds BENCH_CONSENT_RECORDS consent records of other
# senders (written by storebench), a domain-wide consent of each bench
# message's sender for example.net, the domain of bwbench's recipients, so
# every recipient is looked up in a store of that size, and a sender record
# for each bench sender (a rate reset), read and parsed at every MAIL FROM.
#
# Run from the build tree (make bench). Sources are found through
# $top_srcdir (default: two levels above this script), programs through
# $top_builddir (default: the current directory). Environment:
#   BENCH_MESSAGES  messages per connection in each run (default 2000)
#   BENCH_CONNS     connections (default 8)
#   BENCH_ROUNDS    rounds of a noop and a bulkwarden run per message, in
#                   turns noop first and bulkwarden first (default 5;
#                   the machine's noise moves one run by 10% and more)
#   BW_BIN          the bulkwarden daemon to measure
#   BENCH_KEEP=1    keep the run directory (config, logs)
#   BENCH_CONSENT_RECORDS  records in the store (default 1000000; the
#                   issue's figure is 10000000: a 2 GB store, 10 s to write)
# No timing is asserted: the script fails only when a run fails (an error
# on the protocol, or a reply other than accept to one of the messages,
# which are all legitimate bulk mail) or a program is missing.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$(pwd)}
BWBENCH=${BWBENCH:-$top_builddir/tests/bench/bwbench}
NOOP=${NOOP:-$top_builddir/tests/bench/noop-milter}
HTMLBENCH=${HTMLBENCH:-$top_builddir/tests/bench/htmlbench}
STOREBENCH=${STOREBENCH:-$top_builddir/tests/bench/storebench}
BW_CTL=${BW_CTL:-$top_builddir/milter/bulkwardenctl}
RECORDS=${BENCH_CONSENT_RECORDS:-1000000}
BW_BIN=${BW_BIN:-$top_builddir/milter/bulkwarden}
BW_USER=${BW_USER:-bulkwarden}
MSGS=${BENCH_MESSAGES:-2000}
CONNS=${BENCH_CONNS:-8}
ROUNDS=${BENCH_ROUNDS:-5}
DATA=$top_srcdir/tests/bench/data
MESSAGES="newsletter-40k.eml small-2k.eml"

pids=""
run=""
notes=""
failed=0

say() { printf '%s\n' "$*"; }
fail() { say "bench: FAIL: $*" >&2; failed=1; }

# (stop and cleanup run from the EXIT trap)
# shellcheck disable=SC2317
# stop PID: TERM, wait up to 10 s, then KILL it and its children
stop() {
	pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kids=$(pgrep -P "$pid" 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null
	n=100
	while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	for p in "$pid" $kids; do
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	wait "$pid" 2>/dev/null
	return 0
}

# shellcheck disable=SC2317
cleanup() {
	for p in $pids; do
		stop "$p"
	done
	pids=""
	if [ -n "$run" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$failed" -ne 0 ]; then
			say "bench: run directory kept: $run" >&2
		else
			rm -rf "$run"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case $MSGS in ''|*[!0-9]*|0) say "bench: BENCH_MESSAGES=$MSGS: want a positive number" >&2; exit 2 ;; esac
case $CONNS in ''|*[!0-9]*|0) say "bench: BENCH_CONNS=$CONNS: want a positive number" >&2; exit 2 ;; esac
case $ROUNDS in ''|*[!0-9]*|0) say "bench: BENCH_ROUNDS=$ROUNDS: want a positive number" >&2; exit 2 ;; esac
case $RECORDS in ''|*[!0-9]*) say "bench: BENCH_CONSENT_RECORDS=$RECORDS: want a number" >&2; exit 2 ;; esac
for p in "$BWBENCH" "$NOOP" "$BW_BIN" "$BW_CTL" "$STOREBENCH"; do
	if [ ! -x "$p" ]; then
		say "bench: $p not built (run \"make bench\" in the build tree)" >&2
		exit 1
	fi
done
for m in $MESSAGES; do
	[ -r "$DATA/$m" ] || { say "bench: $DATA/$m missing" >&2; exit 1; }
done

run=$(mktemp -d "${TMPDIR:-/tmp}/bulkwarden-bench.XXXXXX") || exit 1
chmod 755 "$run"
mkdir "$run/store"
cp "$top_srcdir/conf/unsubscribe-phrases" "$run/unsubscribe-phrases" || exit 1
{
	say "# bulkwarden configuration of the benchmark (tests/bench/run.sh)"
	say "Socket unix:$run/bulkwarden.sock"
	say "Syslog no"
	say "LogLevel warning"
	say "Store lmdb:$run/store"
	say "InternalHosts 127.0.0.1"
	say "PhraseFile $run/unsubscribe-phrases"
	say "MapSize 8G"
	say "RequireConsent yes"
	# rate limits that are checked for every message and recipient but
	# never reached (a refusal would fail the run)
	say "MessageRate 1000000000/1h"
	say "RecipientRate 1000000000/1h"
} >"$run/bulkwarden.conf"

# the consent records: other senders' (storebench), and the bench senders'
if [ "$RECORDS" -gt 0 ] &&
    ! "$STOREBENCH" -m 8192 "$run/store" "$RECORDS" import >"$run/storebench-import.out" 2>&1; then
	say "bench: storebench could not write $RECORDS records:" >&2
	sed 's/^/    /' "$run/storebench-import.out" >&2
	exit 1
fi
for m in $MESSAGES; do
	from=$(sed -n 's/^From:.*<[^@]*@\([^>]*\)>.*/\1/p' "$DATA/$m" | head -n 1)
	if ! "$BW_CTL" -c "$run/bulkwarden.conf" consent add "$from" '*@example.net' \
	    --method double-opt-in --source bench >/dev/null 2>"$run/ctl.err"; then
		say "bench: cannot record the consent of $from:" >&2
		sed 's/^/    /' "$run/ctl.err" >&2
		exit 1
	fi
	if ! "$BW_CTL" -c "$run/bulkwarden.conf" rate reset "$from" --note bench \
	    >/dev/null 2>"$run/ctl.err"; then
		say "bench: cannot write the sender record of $from:" >&2
		sed 's/^/    /' "$run/ctl.err" >&2
		exit 1
	fi
done
if [ "$(id -u)" -eq 0 ]; then
	# bulkwarden refuses to run as root: it drops to a system user
	if ! getent passwd "$BW_USER" >/dev/null; then
		useradd --system --no-create-home --shell /usr/sbin/nologin "$BW_USER" ||
			{ say "bench: cannot create user $BW_USER" >&2; exit 1; }
	fi
	say "UserID $BW_USER" >>"$run/bulkwarden.conf"
	chown -R "$BW_USER" "$run/store" "$run/unsubscribe-phrases" "$run/bulkwarden.conf"
fi

# up NAME PID SOCKET LOG: wait up to 30 s for the socket of a daemon we started
up() {
	n=300
	while [ "$n" -gt 0 ]; do
		[ -S "$3" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
		n=$((n - 1))
	done
	say "bench: $1 did not come up; its log:" >&2
	sed 's/^/    /' "$4" >&2
	failed=1
	exit 1
}

"$NOOP" -f -s "unix:$run/noop.sock" >"$run/noop.log" 2>&1 </dev/null &
noop_pid=$!
pids="$pids $noop_pid"
up noop-milter "$noop_pid" "$run/noop.sock" "$run/noop.log"
"$BW_BIN" -f -c "$run/bulkwarden.conf" >"$run/bulkwarden.log" 2>&1 </dev/null &
bw_pid=$!
pids="$pids $bw_pid"
up bulkwarden "$bw_pid" "$run/bulkwarden.sock" "$run/bulkwarden.log"
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)

# ticks PID: CPU time (user + system, clock ticks) used so far by the
# process PID and its children (bulkwarden's supervisor forks the milter)
ticks() {
	for p in $1 $(pgrep -P "$1" 2>/dev/null); do
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null
	done | awk '{ t += $12 + $13 } END { print t + 0 }'
}

# field NAME LINE: the value of NAME=... in bwbench's last line
field() { printf '%s\n' "$2" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# bench MILTER PID SOCKET MESSAGE: one warm-up and one measured run; sets
# rate, p50, p99 and cpu (the milter's CPU ms per message), all empty when
# the run failed
bench() {
	rate="" p50="" p99="" cpu=""
	set -- "$1" "$3" "$4" "$2"
	if ! "$BWBENCH" -q -w 10 -c "$CONNS" -m 20 -s "$2" -f "$DATA/$3" >"$run/out" 2>&1; then
		fail "$1, $3 (warm-up): bwbench failed"
		sed 's/^/    /' "$run/out" >&2
		return
	fi
	t0=$(ticks "$4")
	if ! "$BWBENCH" -c "$CONNS" -m "$MSGS" -s "$2" -f "$DATA/$3" >"$run/out" 2>&1; then
		fail "$1, $3: bwbench failed"
		sed 's/^/    /' "$run/out" >&2
		return
	fi
	line=$(grep '^bwbench: msgs=' "$run/out" | tail -n 1)
	msgs=$(field msgs "$line")
	if [ "$msgs" != $((CONNS * MSGS)) ] || [ "$(field accept "$line")" != "$msgs" ] ||
	    [ "$(field quarantine "$line")" != 0 ] || [ "$(field sent "$line")" != "$msgs" ]; then
		fail "$1, $3: not every message reached the filter and was accepted"
		sed 's/^/    /' "$run/out" >&2
		return
	fi
	t1=$(ticks "$4")
	cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$msgs" 'BEGIN { printf "%.3fms", t * 1000 / hz / n }')
	headers=$(field addheader "$line")
	rate=$(field rate "$line")
	rate=${rate%/s}
	p50=$(field p50 "$line")
	p99=$(field p99 "$line")
}

# median of the numbers on stdin (one per line; empty lines ignored)
median() {
	sort -n | awk 'NF { v[n++] = $1 } END { if (n) print (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) }'
}

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
say "bench: $CONNS connections x $MSGS messages per run, unix sockets, $ncpu CPUs,"
say "       consent checked for every recipient in a store of $RECORDS records;"
say "       $ROUNDS rounds of a noop and a bulkwarden run back to back (in turns"
say "       noop first and bulkwarden first), medians shown"
fmt='%-11s %-19s %9s %9s %9s %10s %8s %s\n'
# shellcheck disable=SC2059
printf "$fmt" milter message msgs/s p50 p99 "cpu/msg" "vs noop" "(rounds)"
for m in $MESSAGES; do
	: >"$run/noop.rows"
	: >"$run/bw.rows"
	: >"$run/ratios"
	r=0
	while [ "$r" -lt "$ROUNDS" ]; do
		r=$((r + 1))
		# the two runs of a round in turns, noop first in odd rounds:
		# whatever favours the first (or the second) run of a pair
		# favours each milter as often
		if [ $((r % 2)) = 1 ]; then order="noop bw"; else order="bw noop"; fi
		for who in $order; do
			if [ "$who" = noop ]; then
				bench noop "$noop_pid" "unix:$run/noop.sock" "$m"
				noop_rate=$rate
			else
				bench bulkwarden "$bw_pid" "unix:$run/bulkwarden.sock" "$m"
				bw_rate=$rate bw_headers=$headers
			fi
			[ -n "$rate" ] && say "$rate ${p50%ms} ${p99%ms} ${cpu%ms}" >>"$run/$who.rows"
		done
		rate=$bw_rate headers=$bw_headers
		if [ -n "$rate" ] && [ -n "$noop_rate" ]; then
			awk -v a="$rate" -v b="$noop_rate" 'BEGIN { if (b > 0) printf "%.2f\n", a / b }' \
			    >>"$run/ratios"
		fi
		# checked bulk mail gets the verdict header: without it the run
		# measured the path of unchecked mail
		[ -n "$rate" ] && [ "$headers" = 0 ] &&
			notes="$notes
note: bulkwarden added no header to $m: were the messages checked as outbound bulk mail?"
	done
	for who in noop bw; do
		rows=$run/$who.rows
		if [ -s "$rows" ]; then
			mr=$(cut -d' ' -f1 "$rows" | median)
			m50=$(cut -d' ' -f2 "$rows" | median)
			m99=$(cut -d' ' -f3 "$rows" | median)
			mc=$(cut -d' ' -f4 "$rows" | median)
			mr=$(printf '%.1f' "$mr") m50=$(printf '%.2fms' "$m50") m99=$(printf '%.2fms' "$m99")
			mc=$(printf '%.3fms' "$mc")
		else
			mr=FAILED m50="" m99="" mc=""
		fi
		if [ "$who" = noop ]; then
			# shellcheck disable=SC2059
			printf "$fmt" noop "$m" "$mr" "$m50" "$m99" "$mc" "" ""
		else
			ratio="" range=""
			if [ -s "$run/ratios" ]; then
				ratio=$(median <"$run/ratios")
				ratio=$(printf '%.2f' "$ratio")
				range="($(sort -n "$run/ratios" | head -n 1)-$(sort -n "$run/ratios" | tail -n 1))"
			fi
			# shellcheck disable=SC2059
			printf "$fmt" bulkwarden "$m" "$mr" "$m50" "$m99" "$mc" "$ratio" "$range"
		fi
	done
done
say "(msgs/s over all connections; p50/p99: latency of one message from MAIL to the"
say " final reply; cpu/msg: CPU time of the milter process per message; vs noop: the"
say " median of the rounds' msgs/s ratios, lowest and highest in parentheses)"
[ -n "$notes" ] && say "${notes#?}"

# the store's part of a recipient check, on the same store (6 keys, one read
# transaction, as bw_consent_check does)
if [ "$RECORDS" -gt 0 ]; then
	if "$STOREBENCH" -m 8192 -n 200000 "$run/store" "$RECORDS" lookup >"$run/storebench.out" 2>&1; then
		grep -i 'lookup' "$run/storebench.out" | sed 's/^/storebench: /'
	else
		fail "storebench lookup failed"
		sed 's/^/    /' "$run/storebench.out" >&2
	fi
fi

# the tokenizer on the three newsletters of tests/data/html (44 to 54 KB)
set -- "$top_srcdir"/tests/data/html/newsletter-*.html
if [ ! -e "$1" ]; then
	say "htmlbench: skipped (no tests/data/html/newsletter-*.html)"
elif [ ! -x "$HTMLBENCH" ]; then
	say "htmlbench: skipped ($HTMLBENCH not built)"
elif ! "$HTMLBENCH" "$@"; then
	fail "htmlbench failed"
fi

if [ "$failed" -ne 0 ]; then
	tail -n 20 "$run/bulkwarden.log" | sed 's/^/bulkwarden.log: /' >&2
	exit 1
fi
exit 0
