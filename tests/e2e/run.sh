#!/bin/bash
# tests/e2e/run.sh - end to end: swaks -> a private Postfix (smtpd_milters:
# bulkwarden) -> smtp-sink, asserting the SMTP replies and what reached the
# sink, byte for byte; plus the daemon's life cycle (config check, reload,
# shutdown, store failure) and bulkwardenctl (stats, dump/restore, scan).
#
# Postfix has three smtpd listeners on 127.0.0.1: PORT_MAIN talks to the
# daemon "e2e" (Mode enforce), PORT_MON to the daemon "mon" (Mode monitor),
# PORT_NONE to no milter. Clients connect from 127.0.0.1 (in InternalHosts:
# outbound) or from 127.0.0.2 (outside InternalHosts: inbound).
#
# To add a case: write a function t_NAME that makes its assertions with
# ok/not_ok/is/like (tests/lib.sh) and add "run_case t_NAME" at the end.

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix.sh"
tap_init e2e || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

MSG=$BW_DATA/msg
OUTSIDE=127.0.0.2
REFUSAL='^550 5\.7\.1 bulk mail must show a visible unsubscribe link'
# the daemon's own config keys for the e2e daemons
E2E_KEYS=(InternalHosts "127.0.0.1,::1")

# ---------------------------------------------------------------- helpers
# deliver TAG: wait until the queue is empty and the sink has TAG; sets FOUND
deliver() {
	FOUND=
	bw_wait_for 20 pf_queue_empty pf
	bw_wait_for 10 at_sink "$1"
}

at_sink() {
	FOUND=$(sink_find sink "$1")
	[ -n "$FOUND" ]
}

# send PORT SRC TAG [SWAKS-ARG...]: send tests/data/msg/SRC tagged TAG
send() {
	local port=$1 src=$2 tag=$3
	shift 3
	swaks_send "$port" "$(mk_msg "$MSG/$src" "$tag")" "$@"
}

# check_delivered WHAT TAG: accepted (250), at the sink, body byte-exact
check_delivered() {
	local what=$1 tag=$2
	like "$what: accepted" "$SMTP_REPLY" '^250 '
	if deliver "$tag"; then
		ok "$what: reached the sink"
		sink_body "$FOUND" >"$BW_RUN/msgs/$tag.got"
		if cmp -s "$BW_RUN/msgs/$tag.body" "$BW_RUN/msgs/$tag.got"; then
			ok "$what: body at the sink is byte-exact"
		else
			not_ok "$what: body at the sink is byte-exact"
			diag "$(diff -u "$BW_RUN/msgs/$tag.body" "$BW_RUN/msgs/$tag.got" | head -n 20)"
		fi
	else
		not_ok "$what: reached the sink"
		not_ok "$what: body at the sink is byte-exact"
		diag "$(pf_queue pf)"
		diag_file "$(pf_log pf)" 10
	fi
}

# check_not_delivered WHAT TAG
check_not_delivered() {
	local what=$1 tag=$2
	bw_wait_for 10 pf_queue_empty pf
	sleep 0.5
	is "$what: nothing at the sink" "$(sink_find sink "$tag")" ""
	if pf_queue_empty pf; then
		ok "$what: nothing left in the Postfix queue"
	else
		not_ok "$what: nothing left in the Postfix queue"
		diag "$(pf_queue pf)"
		pf_flush pf
	fi
}

# header_of FILE NAME: the value(s) of header NAME as delivered
header_of() {
	sink_headers "$1" | awk -v n="$2" 'BEGIN { n = tolower(n) ":" }
		tolower(substr($0, 1, length(n))) == n { v = substr($0, length(n) + 1); sub(/^[ \t]+/, "", v); print v }'
}

# daemon_up NAME [KEY VALUE]...: start a daemon and say so as a test
daemon_up() {
	if bw_start "$@"; then
		ok "daemon '$1' starts"
		return 0
	fi
	not_ok "daemon '$1' starts"
	return 1
}

run_case() {
	diag "--- $1"
	"$1"
}

# ---------------------------------------------------------------- cases
# (1) outbound bulk with List-Unsubscribe and visible footer links
t_outbound_bulk_visible() {
	send "$PORT_MAIN" bulk-visible.eml c1
	check_delivered "outbound bulk with visible links" c1
	[ -n "$FOUND" ] || return
	like "outbound bulk with visible links: List-Unsubscribe kept" \
		"$(header_of "$FOUND" List-Unsubscribe)" '^<https://example\.com/u/8f2c1e>'
	like "outbound bulk with visible links: X-Bulkwarden says pass" \
		"$(header_of "$FOUND" X-Bulkwarden)" '^pass( |$)'
}

# (2) the same without link, without List-Unsubscribe, Precedence: bulk
t_outbound_bulk_nolink() {
	send "$PORT_MAIN" bulk-nolink.eml c2
	like "outbound bulk without link: 550 5.7.1 with the reason" "$SMTP_REPLY" \
		"$REFUSAL \\(text/(html|plain) part: no unsubscribe link\\)\$"
	check_not_delivered "outbound bulk without link" c2
	send "$PORT_MAIN" bulk-hidden.eml c2h
	like "outbound bulk with link hidden by display:none: 550 5.7.1 naming part and failure" \
		"$SMTP_REPLY" "$REFUSAL \\(text/html part: link hidden by display:none\\)\$"
	check_not_delivered "outbound bulk with hidden link" c2h
}

# (2b) every trick of tests/data/unsub through Postfix (tests/e2e/tricks.tsv):
# the refused ones get 550 5.7.1 naming the part and the failure, and nothing
# reaches the sink; the visible ones are delivered byte-exact.
t_tricks() {
	local n=0 name want part words tag reply
	while IFS='	' read -r name want part words; do
		case $name in ''|'#'*) continue ;; esac
		n=$((n + 1))
		tag=tr$n
		swaks_send "$PORT_MAIN" "$(mk_msg "$top_srcdir/tests/data/unsub/$name.eml" "$tag")"
		if [ "$want" = visible ]; then
			check_delivered "trick $name (visible)" "$tag"
			continue
		fi
		reply=$SMTP_REPLY
		like "trick $name ($want): 550 5.7.1" "$reply" "$REFUSAL \\($part part: "
		case $reply in
		*"$words"*) ok "trick $name: the reply says \"$words\"" ;;
		*) not_ok "trick $name: the reply says \"$words\""; diag "reply: $reply" ;;
		esac
	done <"$top_srcdir/tests/e2e/tricks.tsv"
	bw_wait_for 10 pf_queue_empty pf
	is "tricks: nothing refused reached the sink" \
		"$(for t in $(seq 1 $n); do sink_find sink tr$t; done | wc -l)" \
		"$(awk -F'\t' '$2 == "visible"' "$top_srcdir/tests/e2e/tricks.tsv" | wc -l)"
}

# (3) the message of (2) from outside InternalHosts: delivered untouched
t_inbound_bulk_nolink() {
	send "$PORT_MAIN" bulk-nolink.eml c3 --local-interface "$OUTSIDE"
	check_delivered "inbound bulk without link (client $OUTSIDE)" c3
	[ -n "$FOUND" ] || return
	like "inbound bulk: the sink saw the message relayed for $OUTSIDE" \
		"$(sink_headers "$FOUND" | grep -m1 '^Received:')" "\\[$OUTSIDE\\]"
	is "inbound bulk: no X-Bulkwarden header" "$(header_of "$FOUND" X-Bulkwarden)" ""
}

# (4) outbound mail that is not bulk
t_outbound_personal() {
	MAIL_FROM=bob@example.com send "$PORT_MAIN" personal.eml c4
	check_delivered "outbound personal mail" c4
}

# (5) Mode monitor: the refused message is delivered, marked would-refuse
t_monitor_mode() {
	send "$PORT_MON" bulk-nolink.eml c5
	check_delivered "monitor mode, bulk without link" c5
	[ -n "$FOUND" ] || return
	like "monitor mode: X-Bulkwarden says would-refuse rule=unsubscribe" \
		"$(header_of "$FOUND" X-Bulkwarden)" '^would-refuse rule=unsubscribe( |$)'
	send "$PORT_MON" bulk-visible.eml c5b
	check_delivered "monitor mode, bulk with visible links" c5b
	[ -n "$FOUND" ] || return
	like "monitor mode: X-Bulkwarden says pass" "$(header_of "$FOUND" X-Bulkwarden)" '^pass( |$)'
}

# (6) bulkwarden -n: a typo in the config is reported as file:line, exit 1
t_config_check() {
	local conf=$BW_RUN/check/bulkwarden.conf out st n
	bw_conf check
	out=$(timeout "$BW_WAIT" "$BW_BIN" -n -c "$conf" 2>&1)
	st=$?
	is "bulkwarden -n on a good config exits 0" "$st" 0
	[ "$st" = 0 ] || diag "$out"
	echo "Mdoe enforce" >>"$conf"
	n=$(wc -l <"$conf")
	out=$(timeout "$BW_WAIT" "$BW_BIN" -n -c "$conf" 2>&1)
	st=$?
	is "bulkwarden -n with a misspelt key exits 1" "$st" 1
	like "bulkwarden -n names file:line of the misspelt key" "$out" "$conf:$n: "
	out=$(timeout "$BW_WAIT" "$BW_CTL" -c "$conf" check-config 2>&1)
	st=$?
	is "bulkwardenctl check-config exits 1 too" "$st" 1
	like "bulkwardenctl check-config names file:line" "$out" "$conf:$n: "
	bw_conf check PhraseFile "$BW_RUN/check/no-such-phrases"
	out=$(timeout "$BW_WAIT" "$BW_BIN" -n -c "$conf" 2>&1)
	st=$?
	is "bulkwarden -n with a missing phrase file exits 1" "$st" 1
	like "bulkwarden -n names the missing phrase file" "$out" "no-such-phrases"
	bw_conf check PhraseFile "$BW_RUN/check/no-such-phrases" BulkRecipients many
	out=$(timeout "$BW_WAIT" "$BW_BIN" -n -c "$conf" 2>&1)
	st=$?
	is "bulkwarden -n with two errors exits 1" "$st" 1
	like "bulkwarden -n with two errors reports the bad value as file:line" "$out" \
		"$conf:[0-9]+: .*BulkRecipients"
	like "bulkwarden -n with two errors reports the missing phrase file too" "$out" "no-such-phrases"
}

# (7) SIGHUP: a broken config keeps the old policy, a good one takes effect
# without dropping connections
t_reload() {
	local conf=${BW_CONF[e2e]} pid=${BW_PID[e2e]} n i took=
	# a session that stays open over both reloads
	if ! smtp_open "$PORT_MAIN"; then
		not_ok "reload: open an SMTP session"
		return
	fi
	held_message() { # TAG: one message on the held session
		smtp_cmd "MAIL FROM:<$MAIL_FROM>" && smtp_cmd "RCPT TO:<$RCPT_TO>" && smtp_cmd DATA &&
			smtp_lines "$(mk_msg "$MSG/bulk-nolink.eml" "$1")" && smtp_cmd .
	}
	smtp_cmd "EHLO client.example.org"
	held_message c7a
	like "reload: held session, before any reload: refused" "$SMTP_REPLY" "$REFUSAL"

	echo "Mdoe monitor" >>"$conf"
	n=$(wc -l <"$conf")
	bw_signal e2e HUP
	if bw_wait_for 15 grep -q "$conf:$n" "$(bw_log e2e)"; then
		ok "reload of a broken config: the log names $conf:$n"
	else
		not_ok "reload of a broken config: the log names $conf:$n"
		diag_file "$(bw_log e2e)" 10
	fi
	check "reload of a broken config: the daemon keeps running" kill -0 "$pid"
	send "$PORT_MAIN" bulk-nolink.eml c7b
	like "reload of a broken config: the old policy still refuses" "$SMTP_REPLY" "$REFUSAL"
	held_message c7c
	like "reload of a broken config: held session still refused" "$SMTP_REPLY" "$REFUSAL"

	bw_conf e2e "${E2E_KEYS[@]}" Mode monitor
	bw_signal e2e HUP
	for i in $(seq 1 30); do
		send "$PORT_MAIN" bulk-nolink.eml "c7d$i"
		case $SMTP_REPLY in 250*) took=c7d$i; break ;; esac
		sleep 0.5
	done
	if [ -n "$took" ] && deliver "$took" &&
	    header_of "$FOUND" X-Bulkwarden | grep -Eq '^would-refuse rule=unsubscribe( |$)'; then
		ok "reload of a good config: Mode monitor takes effect"
	else
		not_ok "reload of a good config: Mode monitor takes effect"
		diag "last reply: $SMTP_REPLY"
	fi
	held_message c7e
	like "reload of a good config: the session open during the reloads is served" \
		"$SMTP_REPLY" '^250 '
	if deliver c7e; then
		like "reload of a good config: held session gets Mode monitor" \
			"$(header_of "$FOUND" X-Bulkwarden)" '^would-refuse rule=unsubscribe( |$)'
	else
		not_ok "reload of a good config: held session gets Mode monitor"
	fi
	smtp_close
	is "reload: the pid file still names the same process" "$(bw_pidfile_pid e2e)" "$pid"

	bw_conf e2e "${E2E_KEYS[@]}"
	bw_signal e2e HUP
	took=
	for i in $(seq 1 30); do
		send "$PORT_MAIN" bulk-nolink.eml "c7f$i"
		case $SMTP_REPLY in 550*) took=1; break ;; esac
		deliver "c7f$i" >/dev/null
		sleep 0.5
	done
	if [ -n "$took" ]; then ok "reload back to Mode enforce refuses again"; else not_ok "reload back to Mode enforce refuses again"; fi
}

# (8) SIGTERM: the message in flight is finished, the daemon exits 0 and
# removes its pid file; Postfix then tempfails (milter_default_action)
t_shutdown() {
	local pidfile=${BW_DIR[e2e]}/bulkwarden.pid f st
	f=$(mk_msg "$MSG/bulk-visible.eml" c8a)
	if smtp_open "$PORT_MAIN" && smtp_cmd "EHLO client.example.org" &&
	    smtp_cmd "MAIL FROM:<$MAIL_FROM>" && smtp_cmd "RCPT TO:<$RCPT_TO>" && smtp_cmd DATA; then
		smtp_lines "$f" 1 20
		sleep 0.5
		bw_signal e2e TERM
		sleep 1
		smtp_lines "$f" 21
		smtp_cmd .
		like "SIGTERM: the message in flight is finished and accepted" "$SMTP_REPLY" '^250 '
		smtp_close
	else
		not_ok "SIGTERM: the message in flight is finished and accepted"
		diag "$SMTP_REPLY"
	fi
	bw_stop e2e
	st=$?
	is "SIGTERM: the daemon exits with status 0" "$st" 0
	check "SIGTERM: the pid file is removed" test ! -e "$pidfile"
	check "SIGTERM: the socket is closed" eval "! bw_port_listening ${BW_PORT[e2e]}"
	send "$PORT_MAIN" bulk-visible.eml c8b
	like "daemon down: Postfix tempfails (milter_default_action = tempfail)" "$SMTP_REPLY" '^4[0-9][0-9] 4\.'
	check_not_delivered "daemon down" c8b
}

# (9) the store fails. The daemon starts all the same, names the store and
# the cause in its log and keeps running; the checks that read the store
# (the sender's state at MAIL FROM, consent) answer as OnStoreError says, so
# no mail is lost: with tempfail it waits in the MTA's queue.
t_store_down() {
	local dir=$BW_RUN/e2e
	mkdir -p "$dir/store-locked"
	chown root:root "$dir/store-locked"
	chmod 700 "$dir/store-locked"
	daemon_up e2e "${E2E_KEYS[@]}" Store "lmdb:$dir/store-locked" OnStoreError tempfail \
		|| { diag_file "$(bw_log e2e)"; return; }
	send "$PORT_MAIN" bulk-visible.eml c9a
	like "store unreadable: checked mail still accepted" "$SMTP_REPLY" '^250 '
	check_delivered "store unreadable" c9a
	send "$PORT_MAIN" bulk-nolink.eml c9b
	like "store unreadable: still refused without a link" "$SMTP_REPLY" '^550 5\.7\.1 '
	check "store unreadable: the daemon keeps running" kill -0 "${BW_PID[e2e]}"
	check "store unreadable: the log names the store" grep -q "store-locked" "$(bw_log e2e)"
	bw_stop e2e

	# an LMDB file that is not one
	mkdir -p "$dir/store-corrupt"
	head -c 65536 /dev/urandom >"$dir/store-corrupt/data.mdb"
	chown -R "$BW_USER" "$dir/store-corrupt"
	daemon_up e2e "${E2E_KEYS[@]}" Store "lmdb:$dir/store-corrupt" OnStoreError tempfail \
		|| { diag_file "$(bw_log e2e)"; return; }
	send "$PORT_MAIN" bulk-visible.eml c9c
	# the sender's state cannot be read: OnStoreError tempfail holds it back
	like "store corrupt: outbound mail waits (OnStoreError tempfail)" "$SMTP_REPLY" \
		"^451 4\\.3\\.0 the sender's state cannot be checked now"
	check "store corrupt: the log says so" grep -qi "corrupt\|not an LMDB" "$(bw_log e2e)"
	check "store corrupt: the file is left as it was" test "$(stat -c %s "$dir/store-corrupt/data.mdb")" = 65536
	bw_stop e2e
}

# (10) bulkwardenctl: stats count what happened; dump/restore round trip;
# scan prints JSON and exits 1 on a refused file
t_ctl() {
	local dir=$BW_RUN/e2e out st n before failed=$tap_failed
	stat_of() { printf '%s\n' "$2" | awk -v k="$1" '$1 == k { print $2; exit }'; }
	rm -rf "$dir/store"
	daemon_up e2e "${E2E_KEYS[@]}" StatsInterval 1h || return
	send "$PORT_MAIN" bulk-visible.eml c10a
	send "$PORT_MAIN" bulk-nolink.eml c10b
	send "$PORT_MAIN" bulk-hidden.eml c10c
	MAIL_FROM=bob@example.com send "$PORT_MAIN" personal.eml c10d
	send "$PORT_MAIN" bulk-nolink.eml c10e --local-interface "$OUTSIDE"
	deliver c10e
	bw_stop e2e
	out=$(bw_ctl e2e stats 2>&1)
	st=$?
	is "bulkwardenctl stats exits 0" "$st" 0
	is "stats written at exit: messages" "$(stat_of messages "$out")" 5
	is "stats written at exit: inbound" "$(stat_of inbound "$out")" 1
	is "stats written at exit: outbound" "$(stat_of outbound "$out")" 4
	is "stats written at exit: accepted" "$(stat_of accepted "$out")" 2
	is "stats written at exit: refused:unsubscribe" "$(stat_of refused:unsubscribe "$out")" 2
	[ "$tap_failed" -eq "$failed" ] || diag "bulkwardenctl stats:" "$out"

	# written every StatsInterval while the daemon runs
	daemon_up e2e "${E2E_KEYS[@]}" StatsInterval 1s || return
	before=$(stat_of messages "$(bw_ctl e2e stats 2>&1)")
	send "$PORT_MAIN" bulk-nolink.eml c10f
	sleep 2.5
	out=$(bw_ctl e2e stats 2>&1)
	is "stats written every StatsInterval: one more message" \
		"$(stat_of messages "$out")" "$((${before:-0} + 1))"
	bw_stop e2e
	out=$(bw_ctl e2e stats 2>&1)

	bw_ctl e2e dump >"$dir/dump1.jsonl" 2>"$dir/dump1.err"
	is "bulkwardenctl dump exits 0" "$?" 0
	n=$(wc -l <"$dir/dump1.jsonl")
	check "dump: one JSON object per line ($n lines)" \
		python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if sys.argv[2] != "0" else 1)' \
		"$dir/dump1.jsonl" "$n"
	bw_conf restored
	bw_ctl restored restore "$dir/dump1.jsonl" >"$dir/restore.out" 2>&1
	is "bulkwardenctl restore into an empty store exits 0" "$?" 0
	bw_ctl restored dump >"$dir/dump2.jsonl" 2>&1
	if cmp -s <(sort "$dir/dump1.jsonl") <(sort "$dir/dump2.jsonl"); then
		ok "dump, restore, dump: the same records"
	else
		not_ok "dump, restore, dump: the same records"
		diag "$(diff <(sort "$dir/dump1.jsonl") <(sort "$dir/dump2.jsonl") | head)"
	fi
	is "stats of the restored store are the same" "$(bw_ctl restored stats 2>&1)" "$out"

	out=$(bw_ctl e2e scan --format json "$MSG/bulk-visible.eml" 2>"$dir/scan.err")
	st=$?
	is "scan of a good message exits 0" "$st" 0
	check "scan JSON of a good message: file, verdict accept, visible body link, headers ok" \
		python3 -c "$SCAN_CHECK" "$out" "$MSG/bulk-visible.eml" accept
	out=$(bw_ctl e2e scan --format json "$MSG/bulk-nolink-text.eml" "$MSG/bulk-visible.eml" \
		2>"$dir/scan.err")
	st=$?
	is "scan with a refused file exits 1" "$st" 1
	is "scan prints one JSON line per file" "$(printf '%s\n' "$out" | grep -c '^{')" 2
	check "scan JSON of a refused message: verdict refuse, rule, 550 reply, reasons" \
		python3 -c "$SCAN_CHECK" "$(printf '%s\n' "$out" | head -n 1)" \
		"$MSG/bulk-nolink-text.eml" refuse
	# a file name is bytes: one that is not UTF-8 is reported with U+FFFD,
	# the report is still JSON and has every field
	cp "$MSG/bulk-visible.eml" "$dir/$(printf 'caf\351')-visible.eml"
	out=$(bw_ctl e2e scan --format json "$dir/$(printf 'caf\351')-visible.eml" 2>"$dir/scan.err")
	st=$?
	is "scan of a file whose name is not UTF-8 exits 0" "$st" 0
	check "scan JSON of a file whose name is not UTF-8: U+FFFD in its name" \
		python3 -c "$SCAN_CHECK" "$out" "$dir/caf\\ufffd-visible.eml" accept
}

# what scan --format json must say: argv = json, file, expected verdict
SCAN_CHECK='
import json, sys
o = json.loads(sys.argv[1])
want = sys.argv[2].encode("ascii").decode("unicode_escape") if "\\u" in sys.argv[2] else sys.argv[2]
for k in ("file", "verdict", "bulk", "body_link", "list_unsubscribe", "one_click", "links", "reasons"):
    assert k in o, "no field %s in %s" % (k, o)
assert o["file"] == want, o["file"]
assert o["verdict"] == sys.argv[3], o["verdict"]
assert o["bulk"] is True
if sys.argv[3] == "accept":
    assert o["body_link"] == "visible", o["body_link"]
    assert o["list_unsubscribe"] == "ok" and o["one_click"] == "ok", o
    assert any(l["unsubscribe"] and l["visible"] for l in o["links"]), o["links"]
    assert o["reasons"] == [], o["reasons"]
else:
    assert o["rule"] == "unsubscribe", o.get("rule")
    assert o["reply"].startswith("550 5.7.1 bulk mail must show a visible unsubscribe link ("), o["reply"]
    assert o["body_link"] == "absent", o["body_link"]
    assert "text/plain part: no unsubscribe link" in o["reasons"], o["reasons"]
'

# ---------------------------------------------------------------- setup
ready=1
require "running as root (private Postfix, daemon drops privileges)" test "$(id -u)" -eq 0 || ready=0
require "Postfix is installed (postfix, postconf, postqueue, postsuper)" \
	bw_have postfix postconf postqueue postsuper || ready=0
require "smtp-sink is installed (Debian package postfix)" bw_have smtp-sink || ready=0
require "swaks is installed" bw_have swaks || ready=0
require "python3 is installed (JSON checks)" bw_have python3 || ready=0
require "bulkwarden is built ($BW_BIN)" test -x "$BW_BIN" || ready=0
require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || ready=0
if [ "$ready" = 1 ]; then
	require "users $BW_USER, postfix and group postdrop exist" \
		eval 'bw_ensure_user && getent passwd postfix && getent group postdrop' || ready=0
fi
[ "$ready" = 1 ] || tap_done

bw_free_port PORT_MAIN && bw_free_port PORT_MON && bw_free_port PORT_NONE && bw_free_port PORT_SINK
daemon_up e2e "${E2E_KEYS[@]}" || ready=0
daemon_up mon "${E2E_KEYS[@]}" Mode monitor || ready=0
if sink_start sink "$PORT_SINK"; then ok "smtp-sink listens on 127.0.0.1:$PORT_SINK"; else not_ok "smtp-sink starts"; ready=0; fi
pf_setup pf "$PORT_SINK" "$PORT_MAIN=inet:127.0.0.1:${BW_PORT[e2e]}" \
	"$PORT_MON=inet:127.0.0.1:${BW_PORT[mon]}" "$PORT_NONE="
if pf_start pf; then ok "private Postfix listens on 127.0.0.1:$PORT_MAIN,$PORT_MON,$PORT_NONE"; else not_ok "private Postfix starts"; ready=0; fi
[ "$ready" = 1 ] || tap_done

# the plumbing without a milter first
send "$PORT_NONE" personal.eml c0
check_delivered "Postfix without milter" c0

# ---------------------------------------------------------------- run
run_case t_outbound_bulk_visible
run_case t_outbound_bulk_nolink
run_case t_tricks
run_case t_inbound_bulk_nolink
run_case t_outbound_personal
run_case t_monitor_mode
run_case t_config_check
run_case t_reload
run_case t_shutdown
run_case t_store_down
run_case t_ctl

# ---------------------------------------------------------------- end
bw_stop mon
is "daemon 'mon' exits with status 0 on SIGTERM" "$?" 0
pf_stop pf
check "private Postfix stopped" eval '! pf_running pf'
check_no_sanitizer_reports
tap_done
