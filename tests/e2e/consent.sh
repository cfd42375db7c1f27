#!/bin/bash
# tests/e2e/consent.sh - consent and unsubscribe end to end: swaks -> a
# private Postfix (smtpd_milters: bulkwarden with RequireConsent) ->
# smtp-sink, asserting the per-recipient replies, which recipients reached
# the sink, and what the store holds after each unsubscribe.
#
# The daemon "consent" has news@example.com as a bulk sender (consent is
# checked at RCPT), an unsubscribe address, the one-click listener and
# AddListUnsubscribe. The daemon "deadstore" has a store directory
# it cannot open: consent cannot be read, so recipients get 451 4.3.0.
# Last, the filter process is killed during a large import.

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix.sh"
tap_init e2e-consent || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

MSG=$BW_DATA/msg
OUTSIDE=127.0.0.2
SENDER=example.com          # the sender id of news@example.com (its domain)

# send PORT SRC TAG [SWAKS-ARG...]
send() {
	local port=$1 src=$2 tag=$3
	shift 3
	swaks_send "$port" "$(mk_msg "$MSG/$src" "$tag")" "$@"
}

at_sink() { [ -n "$(sink_find sink "$1")" ]; }

# rcpts_at_sink TAG: the envelope recipients the sink got with TAG, sorted
rcpts_at_sink() {
	local f
	bw_wait_for 20 pf_queue_empty pf
	bw_wait_for 10 at_sink "$1"
	f=$(sink_find sink "$1")
	[ -n "$f" ] || return 0
	sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$f" | tr -d '\r' | sort | tr '\n' ' ' | sed 's/ $//'
}

# rcpt_reply ADDR: the reply swaks got to RCPT TO:<ADDR> in the last session
rcpt_reply() {
	awk -v a="RCPT TO:<$1>" '
		index($0, a) { want = 1; next }
		want && /^<(-|\*\*) +[0-9][0-9][0-9]/ { sub(/^<(-|\*\*) +/, ""); print; exit }
	' "$SWAKS_LOG" | tr -d '\r'
}

# ctl ARGS...: bulkwardenctl with the consent daemon's config
ctl() { bw_ctl consent "$@"; }

# one_click TOKEN [CURL-ARG...]: POST List-Unsubscribe=One-Click; prints the HTTP status
one_click() {
	local tok=$1
	shift
	curl -s -o "$BW_RUN/oneclick.out" -w '%{http_code}' --max-time 10 \
		-d 'List-Unsubscribe=One-Click' "$@" "http://127.0.0.1:$PORT_HTTP/u/$tok"
}

run_case() {
	diag "--- $1"
	"$1"
}

# ---------------------------------------------------------------- cases
# (1) a campaign to five: two with consent, one whose consent an unsubscribe
# overrides, two without any record. Exactly the two reach the sink.
t_campaign_five() {
	cat >"$BW_RUN/consent.csv" <<EOF
sender,recipient,granted_at,method,source,evidence
$SENDER,ann@example.net,2026-01-10T09:00:00Z,double-opt-in,https://example.com/signup,form-4711
$SENDER,bob@example.net,2026-02-01T12:30:00+01:00,single-opt-in,https://example.com/shop,order-88
$SENDER,cat@example.net,2025-11-05T08:00:00Z,double-opt-in,https://example.com/signup,form-1234
EOF
	ctl consent import "$BW_RUN/consent.csv" >"$BW_RUN/import.out" 2>&1
	is "consent import of three rows exits 0" "$?" 0
	ctl suppress add "$SENDER" cat@example.net --reason unsubscribe --source test >/dev/null 2>&1
	is "suppress add exits 0" "$?" 0
	send "$PORT_C" bulk-visible.eml k1 --to ann@example.net,bob@example.net,cat@example.net,dan@example.net,eve@example.net
	like "campaign: DATA accepted for the others" "$SMTP_REPLY" '^250 '
	is "campaign: ann@example.net accepted" "$(rcpt_reply ann@example.net | cut -c1-3)" 250
	is "campaign: bob@example.net accepted" "$(rcpt_reply bob@example.net | cut -c1-3)" 250
	like "campaign: cat@example.net refused as unsubscribed" "$(rcpt_reply cat@example.net)" \
		'^550 5\.7\.1 <cat@example\.net>: no consent for bulk mail from example\.com \(unsubscribed '
	is "campaign: dan@example.net refused without a record" "$(rcpt_reply dan@example.net)" \
		'550 5.7.1 <dan@example.net>: no consent for bulk mail from example.com (no consent record)'
	is "campaign: eve@example.net refused without a record" "$(rcpt_reply eve@example.net)" \
		'550 5.7.1 <eve@example.net>: no consent for bulk mail from example.com (no consent record)'
	is "campaign: exactly the two consenting recipients reached the sink" "$(rcpts_at_sink k1)" \
		"ann@example.net bob@example.net"
	check "campaign: the log names each refused recipient and why" \
		eval "grep -q 'rcpt=<dan@example.net> refused: no consent record' '$(bw_log consent)' &&
		      grep -q 'rcpt=<cat@example.net> refused: unsubscribed' '$(bw_log consent)'"
}

# (2) bulk known only at end of message (List-Id from a sender that is not
# declared): the recipients without consent are removed, the rest delivered
t_late_bulk_removal() {
	ctl consent add example.org ann@example.net --method double-opt-in --source https://example.org/join \
		--granted-at 2026-03-01T00:00:00Z >/dev/null 2>&1
	is "consent add exits 0" "$?" 0
	send "$PORT_C" bulk-visible.eml k2 --from letters@example.org --to ann@example.net,dan@example.net,eve@example.net
	like "late bulk: accepted" "$SMTP_REPLY" '^250 '
	is "late bulk: only the consenting recipient reached the sink" "$(rcpts_at_sink k2)" "ann@example.net"
	check "late bulk: the log names the removed recipients" \
		eval "grep -q 'rcpt=<eve@example.net> removed: no consent record' '$(bw_log consent)'"
	send "$PORT_C" bulk-visible.eml k2b --from letters@example.org --to dan@example.net,eve@example.net
	like "late bulk to nobody with consent: 550 5.7.1 naming the recipients" "$SMTP_REPLY" \
		'^550 5\.7\.1 2 recipients lack consent for bulk mail from example\.org, first <dan@example\.net> \(no consent record\)'
	is "late bulk to nobody with consent: nothing at the sink" "$(sink_find sink k2b)" ""
}

# (3) unsubscribe by mail: the request is consumed, the suppression is in
# the store, and the very next message to bob is refused
t_unsubscribe_by_mail() {
	local tok
	tok=$(ctl token make "$SENDER" bob@example.net 2>"$BW_RUN/token.err")
	like "token make prints a token" "$tok" '^[a-z2-7]{40,}$'
	send "$PORT_C" unsubscribe-request.eml k3 --from bob@example.net \
		--to "unsubscribe+$tok@lists.example.com" --local-interface "$OUTSIDE"
	like "unsubscribe mail: accepted" "$SMTP_REPLY" '^250 '
	sleep 1
	is "unsubscribe mail: consumed, nothing at the sink" "$(sink_find sink k3)" ""
	like "unsubscribe mail: the suppression is in the store" \
		"$(ctl suppress show "$SENDER" bob@example.net 2>&1)" '"reason": ?"unsubscribe".*"source": ?"mailto"'
	send "$PORT_C" bulk-visible.eml k3b --to bob@example.net,ann@example.net
	like "after the unsubscribe: bob refused at once" "$(rcpt_reply bob@example.net)" \
		'^550 5\.7\.1 <bob@example\.net>: no consent for bulk mail from example\.com \(unsubscribed '
	is "after the unsubscribe: ann still gets it" "$(rcpts_at_sink k3b)" "ann@example.net"
	# a forged token: delivered as it is, nothing written
	send "$PORT_C" unsubscribe-request.eml k3c --from ann@example.net \
		--to "unsubscribe+${tok%?????}aaaaa@lists.example.com" --local-interface "$OUTSIDE"
	like "forged unsubscribe token: accepted" "$SMTP_REPLY" '^250 '
	check "forged unsubscribe token: ann is not suppressed" \
		eval "! ctl suppress show '$SENDER' ann@example.net 2>/dev/null | grep -q unsubscribe"
}

# (4) AddListUnsubscribe puts a fresh token into the message; a one-click
# POST with it (curl) takes effect for the very next message
t_one_click() {
	local f lu tok code
	ctl consent add "$SENDER" fay@example.net --method double-opt-in --granted-at 2026-04-01T00:00:00Z \
		>/dev/null 2>&1
	send "$PORT_C" bulk-no-list-unsubscribe.eml k4 --to fay@example.net
	like "no List-Unsubscribe, one recipient: accepted" "$SMTP_REPLY" '^250 '
	is "no List-Unsubscribe: delivered to fay" "$(rcpts_at_sink k4)" "fay@example.net"
	f=$(sink_find sink k4)
	lu=$(sink_headers "$f" | awk 'tolower($0) ~ /^list-unsubscribe:/ { p = 1; print; next } p && /^[ \t]/ { print; next } { p = 0 }' | tr -d '\n\t')
	like "List-Unsubscribe added with the one-click URL and the mailto address" "$lu" \
		'^List-Unsubscribe: <https://unsub\.example\.com/u/[a-z2-7]+>,<mailto:unsubscribe\+[a-z2-7]+@lists\.example\.com>$'
	like "List-Unsubscribe-Post added" "$(sink_headers "$f" | grep -i '^List-Unsubscribe-Post:')" \
		'^List-Unsubscribe-Post: List-Unsubscribe=One-Click$'
	tok=$(printf '%s' "$lu" | sed -n 's|.*https://unsub\.example\.com/u/\([a-z2-7]*\)>.*|\1|p')
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT_HTTP/u/$tok")
	is "one-click GET: 200 (a page, no unsubscribe)" "$code" 200
	send "$PORT_C" bulk-no-list-unsubscribe.eml k4a --to fay@example.net
	is "after the GET fay still gets mail" "$(rcpts_at_sink k4a)" "fay@example.net"
	code=$(one_click "$tok")
	is "one-click POST with the token from the delivered header: 200" "$code" 200
	send "$PORT_C" bulk-no-list-unsubscribe.eml k4b --to fay@example.net
	like "after the one-click POST: the very next message is refused" "$SMTP_REPLY" \
		'^550 5\.7\.1 <fay@example\.net>: no consent for bulk mail from example\.com \(unsubscribed '
	like "the suppression says one-click" "$(ctl suppress show "$SENDER" fay@example.net 2>&1)" \
		'"source": ?"one-click"'
	code=$(one_click "${tok%?????}aaaaa")
	like "one-click POST with a forged token: 4xx" "$code" '^4'
}

# (5) forget: no clear-text trace of the address, its opt-out still holds
t_forget() {
	local out
	out=$(ctl forget bob@example.net 2>&1)
	is "forget exits 0" "$?" 0
	ctl dump >"$BW_RUN/dump.jsonl" 2>&1
	is "dump after forget exits 0" "$?" 0
	check "after forget: the address appears nowhere in the store" \
		eval "! grep -qi 'bob@example.net' '$BW_RUN/dump.jsonl'"
	check "after forget: a keyed hash stands in the suppressions" \
		eval "grep -q '\"suppress\".*#[0-9a-f]\\{64\\}' '$BW_RUN/dump.jsonl'"
	send "$PORT_C" bulk-visible.eml k5 --to bob@example.net
	like "after forget: bob is still refused as unsubscribed" "$SMTP_REPLY" \
		'^550 5\.7\.1 <bob@example\.net>: no consent for bulk mail from example\.com \(unsubscribed '
	diag "$out"
}

# (6) the store cannot be read: the sender's state (read at MAIL FROM)
# fails closed, and the mail waits in the MTA's queue
t_store_down() {
	send "$PORT_DEAD" bulk-visible.eml k6 --to ann@example.net
	like "store down: 451 4.3.0 at MAIL FROM" "$SMTP_REPLY" \
		"^451 4\\.3\\.0 the sender's state cannot be checked now, try again later"
	is "store down: nothing at the sink" "$(sink_find sink k6)" ""
	send "$PORT_DEAD" bulk-visible.eml k6b --to ann@example.net
	check "store down: logged once" eval "[ \"\$(grep -c 'lookup failed' '$(bw_log deadstore)')\" = 1 ]"
}

# (7) kill -9 of the filter process during a large import: the import
# completes, the supervisor restarts the filter, the store is whole
t_kill_during_import() {
	local n=300000 imp child st count
	awk -v n="$n" 'BEGIN { print "sender,recipient,granted_at,method,source,evidence";
		for (i = 1; i <= n; i++) printf "example.com,u%d@import.example,2026-05-01T00:00:00Z,import,crm,row-%d\n", i, i }' \
		>"$BW_RUN/big.csv"
	ctl consent import "$BW_RUN/big.csv" >"$BW_RUN/big.out" 2>&1 &
	imp=$!
	sleep 0.5
	child=$(pgrep -P "${BW_PID[consent]}" | head -n 1)
	if [ -n "$child" ] && kill -KILL "$child"; then
		ok "the filter process is killed (SIGKILL) during the import"
	else
		not_ok "the filter process is killed (SIGKILL) during the import"
	fi
	wait "$imp"
	st=$?
	is "the import completes (exit 0)" "$st" 0
	count=$(ctl consent export example.com --format csv 2>/dev/null | grep -c '@import\.example')
	is "every imported row is in the store" "$count" "$n"
	check "the supervisor restarted the filter" bw_wait_for 10 eval '[ -n "$(pgrep -P "${BW_PID[consent]}")" ]'
	bw_wait_for 10 bw_socket_ready consent
	send "$PORT_C" bulk-visible.eml k7 --to u123456@import.example
	like "after the restart an imported recipient gets mail" "$SMTP_REPLY" '^250 '
	is "after the restart: delivered" "$(rcpts_at_sink k7)" "u123456@import.example"
}

# (8) the same rule with the store in Redis (a fleet of MTAs): a real
# redis-server, records written with bulkwardenctl, one campaign
t_redis_store() {
	local port
	if ! bw_have redis-server || ! "$BW_CTL" config-keys >/dev/null 2>&1; then
		ok "# SKIP redis-server is not installed"
		return
	fi
	bw_free_port port
	setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		>"$BW_RUN/redis.log" 2>&1 </dev/null &
	bw_track_pid "$!"
	if ! bw_wait_for 10 bw_port_listening "$port"; then
		not_ok "redis-server listens on 127.0.0.1:$port"
		return
	fi
	if ! bw_start redisd "${CONSENT_KEYS[@]}" OneClickListen - Store "redis:127.0.0.1:$port"; then
		if grep -qi 'redis.*not built\|unknown store' "$(bw_log redisd)"; then
			ok "# SKIP bulkwarden is built without the Redis backend"
		else
			not_ok "daemon 'redisd' starts with a Redis store"
		fi
		return
	fi
	ok "daemon 'redisd' starts with a Redis store"
	bw_ctl redisd consent add "$SENDER" ann@example.net --method double-opt-in >/dev/null 2>&1
	is "Redis: consent add exits 0" "$?" 0
	bw_ctl redisd suppress add "$SENDER" bob@example.net --reason admin >/dev/null 2>&1
	send "$PORT_R" bulk-visible.eml k8 --to ann@example.net,bob@example.net,dan@example.net
	like "Redis: bob refused as suppressed" "$(rcpt_reply bob@example.net)" \
		'^550 5\.7\.1 <bob@example\.net>: no consent for bulk mail from example\.com \(suppressed \(admin\) '
	like "Redis: dan refused without a record" "$(rcpt_reply dan@example.net)" '^550 5\.7\.1 <dan@example\.net>'
	is "Redis: only ann reached the sink" "$(rcpts_at_sink k8)" "ann@example.net"
	# the sender class slow: one message an hour, the limiter in Redis
	bw_ctl redisd consent add slow.example ann@example.net --method api >/dev/null 2>&1
	send "$PORT_R" bulk-visible.eml k8b --from news@slow.example --to ann@example.net
	like "Redis rate: the first message passes" "$SMTP_REPLY" '^250 '
	send "$PORT_R" bulk-visible.eml k8c --from news@slow.example --to ann@example.net
	like "Redis rate: the second waits" "$SMTP_REPLY" '^451 4\.7\.1 sender slow\.example is over its message rate 1/1h'
	bw_stop redisd
	bw_start redisd "${CONSENT_KEYS[@]}" OneClickListen - Store "redis:127.0.0.1:$port" >/dev/null 2>&1
	send "$PORT_R" bulk-visible.eml k8d --from news@slow.example --to ann@example.net
	like "Redis rate: after a restart of the daemon it still waits (the limiter is shared)" \
		"$SMTP_REPLY" '^451 4\.7\.1 sender slow\.example is over its message rate 1/1h'
	bw_ctl redisd rate reset slow.example >/dev/null 2>&1
	send "$PORT_R" bulk-visible.eml k8e --from news@slow.example --to ann@example.net
	like "Redis rate: after rate reset it passes" "$SMTP_REPLY" '^250 '
	bw_stop redisd
}

# (9) a suspended sender: its mail waits in Postfix's hold queue, its queue
# id is recorded, and "sender resolve --release" lets it go to the sink
t_suspended_held() {
	local qid q
	ctl consent add hold.example ann@example.net --method double-opt-in \
		--source https://hold.example/join >/dev/null 2>&1
	ctl sender suspend hold.example --note "complaint spike" >/dev/null 2>&1
	is "sender suspend exits 0" "$?" 0
	send "$PORT_C" bulk-visible.eml k9 --from news@hold.example --to ann@example.net
	like "suspended: the MTA accepts the mail" "$SMTP_REPLY" '^250 '
	check "suspended: the message is in Postfix's hold queue" \
		bw_wait_for 10 eval "pf_queue pf | grep -q '^[0-9A-Za-z]*!'"
	qid=$(pf_queue pf | awk '/^[0-9A-Za-z]+!/ { sub(/!.*/, ""); print; exit }')
	is "suspended: nothing at the sink" "$(sink_find sink k9)" ""
	q=$(ctl sender show hold.example 2>&1)
	like "sender show lists the held queue id" "$q" "held: +1 message"$'\n'" +$qid "
	check "the log says the message was held" \
		eval "grep -q 'from=<news@hold.example> sender=hold.example rcpt=1 outbound=yes action=hold' '$(bw_log consent)'"
	q=$(ctl sender resolve hold.example --release --note "list cleaned" 2>&1)
	like "sender resolve --release releases it" "$q" 'released 1 held message'
	check "released: it reaches the sink" bw_wait_for 20 at_sink k9
	is "released: the sink got it for ann" "$(rcpts_at_sink k9)" "ann@example.net"
	check "released: the hold queue is empty" bw_wait_for 10 pf_queue_empty pf
	send "$PORT_C" bulk-visible.eml k9b --from news@hold.example --to ann@example.net
	check "after resolve: the next message goes straight through" bw_wait_for 20 at_sink k9b
}

# (10) a sender class with a message rate of one an hour: the second
# message waits with 451 4.7.1 and the time to wait; a rate reset lets the
# next one go
t_rate() {
	ctl consent add slow.example ann@example.net --method api >/dev/null 2>&1
	send "$PORT_C" bulk-visible.eml k10 --from news@slow.example --to ann@example.net
	like "rate: the first message passes" "$SMTP_REPLY" '^250 '
	send "$PORT_C" bulk-visible.eml k10b --from news@slow.example --to ann@example.net
	like "rate: the second gets 451 4.7.1 with the wait" "$SMTP_REPLY" \
		'^451 4\.7\.1 sender slow\.example is over its message rate 1/1h, try again in 3[0-9][0-9][0-9] seconds'
	is "rate: the second is not at the sink" "$(sink_find sink k10b)" ""
	ctl rate reset slow.example --note "warm-up done" >/dev/null 2>&1
	is "rate reset exits 0" "$?" 0
	send "$PORT_C" bulk-visible.eml k10c --from news@slow.example --to ann@example.net
	like "rate: after the reset the next one passes" "$SMTP_REPLY" '^250 '
	check "rate: it reaches the sink" bw_wait_for 20 at_sink k10c
}

# (11) SenderIdentity "dkim header domain" (daemon "ident"): a DKIM
# signature that verifies names the sender; without one, the header a
# trusted upstream set; else the envelope domain. Consent waits for the id
# and is looked up at end of message (ConsentAtEnd remove).
# ident_msg TAG CUSTOMER [SIGN-DOMAIN [TAMPER]]: bulk-visible.eml with an
# X-Customer header (none when CUSTOMER is -), signed by SIGN-DOMAIN, and
# its body changed after signing when TAMPER is given
ident_msg() {
	local tag=$1 cust=$2 dom=${3:-} f
	f=$(mk_msg "$MSG/bulk-visible.eml" "$tag")
	[ "$cust" = - ] || sed -i "1i X-Customer: $cust" "$f"
	if [ -n "$dom" ]; then
		"$ARFSIGN" "$dom" sel "$BW_RUN/keys/$dom.private" <"$f" >"$f.signed" && mv "$f.signed" "$f"
		[ -z "${4:-}" ] || sed -i 's/forty new varieties/fifty new varieties/' "$f"
	fi
	echo "$f"
}

t_identity() {
	local held0
	ctl_i() { bw_ctl ident "$@"; }
	ctl_i consent add cust-42 ann@example.net --method double-opt-in --source https://example.com/c42 \
		>/dev/null 2>&1
	ctl_i consent add signed.example bob@example.net --method double-opt-in \
		--source https://signed.example/join >/dev/null 2>&1
	is "identity: consent records for cust-42 and signed.example" "$?" 0
	# the trusted upstream's header: RCPTs wait, bob is removed at the end
	swaks_send "$PORT_I" "$(ident_msg id1 cust-42)" --to ann@example.net,bob@example.net
	like "header identity: accepted" "$SMTP_REPLY" '^250 '
	is "header identity: RCPT of bob waits for the sender id" "$(rcpt_reply bob@example.net | cut -c1-3)" 250
	is "header identity: only cust-42's consenting recipient reached the sink" "$(rcpts_at_sink id1)" \
		"ann@example.net"
	check "header identity: the log names the sender id" \
		eval "grep -q 'sender=cust-42 rcpt=<bob@example.net> removed: no consent record' '$(bw_log ident)'"
	# a signature that verifies wins over the header
	swaks_send "$PORT_I" "$(ident_msg id2 cust-42 signed.example)" --to ann@example.net,bob@example.net
	like "DKIM identity: accepted" "$SMTP_REPLY" '^250 '
	is "DKIM identity: only signed.example's consenting recipient reached the sink" \
		"$(rcpts_at_sink id2)" "bob@example.net"
	# the body changed after signing: no DKIM id, the header's is used
	swaks_send "$PORT_I" "$(ident_msg id3 cust-42 signed.example tamper)" --to ann@example.net,bob@example.net
	is "forged DKIM: the header's sender again" "$(rcpts_at_sink id3)" "ann@example.net"
	check "forged DKIM: the sink's copy is the tampered one" \
		eval "grep -q 'fifty new varieties' '$(sink_find sink id3)'"
	# neither: the envelope domain, which has no consent for anybody
	swaks_send "$PORT_I" "$(ident_msg id4 -)" --to ann@example.net,bob@example.net
	like "no DKIM, no header: the envelope domain lacks consent: 550 for the message" "$SMTP_REPLY" \
		'^550 5\.7\.1 2 recipients lack consent for bulk mail from example\.com, first <ann@example\.net>'
	is "no DKIM, no header: nothing at the sink" "$(sink_find sink id4)" ""
	# a suspended customer behind the shared envelope is held, the others go on
	ctl_i sender suspend cust-42 --note "e2e" >/dev/null 2>&1
	held0=$(pf_queue pf | grep -c '^[0-9A-Za-z]*!')
	swaks_send "$PORT_I" "$(ident_msg id5 cust-42)" --to ann@example.net
	like "suspended customer: the MTA accepts the mail" "$SMTP_REPLY" '^250 '
	check "suspended customer: held in Postfix's hold queue" \
		bw_wait_for 10 eval '[ "$(pf_queue pf | grep -c "^[0-9A-Za-z]*!")" -gt "$held0" ]'
	check "suspended customer: the log says held for cust-42" \
		eval "grep -q 'sender=cust-42 rcpt=1 outbound=yes action=hold' '$(bw_log ident)'"
	like "suspended customer: sender show lists the held id" "$(ctl_i sender show cust-42 2>&1)" \
		"held: +1 message"
	ctl_i consent add cust-7 cy@example.net --method double-opt-in --source https://example.com/c7 \
		>/dev/null 2>&1
	swaks_send "$PORT_I" "$(ident_msg id6 cust-7)" --to cy@example.net
	like "another customer behind the same envelope: accepted" "$SMTP_REPLY" '^250 '
	is "another customer: delivered" "$(rcpts_at_sink id6)" "cy@example.net"
}

# ---------------------------------------------------------------- setup
ready=1
require "running as root (private Postfix, daemon drops privileges)" test "$(id -u)" -eq 0 || ready=0
require "Postfix is installed" bw_have postfix postconf postqueue postsuper smtp-sink || ready=0
require "swaks and curl are installed" bw_have swaks curl || ready=0
require "opendkim-genkey is installed" bw_have opendkim-genkey || ready=0
ARFSIGN=${ARFSIGN:-$top_builddir/tests/unit/arfsign}
require "arfsign is built ($ARFSIGN)" test -x "$ARFSIGN" || ready=0
require "bulkwarden is built ($BW_BIN)" test -x "$BW_BIN" || ready=0
require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || ready=0
if [ "$ready" = 1 ]; then
	require "users $BW_USER, postfix and group postdrop exist" \
		eval 'bw_ensure_user && getent passwd postfix && getent group postdrop' || ready=0
fi
[ "$ready" = 1 ] || tap_done

bw_free_port PORT_C && bw_free_port PORT_DEAD && bw_free_port PORT_SINK && bw_free_port PORT_HTTP &&
	bw_free_port PORT_I &&
	bw_free_port PORT_R && bw_free_port port && BW_PORT[redisd]=$port
mkdir -p "$BW_RUN/keys"
printf 'k1 %s\n' 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0 >"$BW_RUN/keys/tokens.key"
printf 'e1 %s\n' 8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677 >"$BW_RUN/keys/erasure.key"
printf 'bulk-sender news@example.com\nsender-class slow message-rate=1/1h\nsender @slow.example class=slow\n' \
	>"$BW_RUN/keys/policy"
chown -R "$BW_USER" "$BW_RUN/keys"
chmod 600 "$BW_RUN/keys"/*.key
CONSENT_KEYS=(RequireConsent yes PolicyFile "$BW_RUN/keys/policy" TokenKeyFile "$BW_RUN/keys/tokens.key"
	ErasureKeyFile "$BW_RUN/keys/erasure.key" UnsubscribeAddress unsubscribe@lists.example.com
	OneClickListen "127.0.0.1:$PORT_HTTP" OneClickURL https://unsub.example.com/u/ AddListUnsubscribe yes
	HoldReleaseCommand "postsuper -c $BW_RUN/pf/etc -H")
if bw_start consent "${CONSENT_KEYS[@]}"; then ok "daemon 'consent' starts"; else not_ok "daemon 'consent' starts"; ready=0; fi
# a store directory the daemon's user may not enter
mkdir -p "$BW_RUN/locked/store"
chmod 700 "$BW_RUN/locked"
if bw_start deadstore RequireConsent yes PolicyFile "$BW_RUN/keys/policy" \
	Store "lmdb:$BW_RUN/locked/store"; then
	ok "daemon 'deadstore' starts with a store it cannot open"
else
	not_ok "daemon 'deadstore' starts with a store it cannot open"
fi
# the signer's key, as opendkim-genkey makes it, in the key file
opendkim-genkey -D "$BW_RUN/keys" -d signed.example -s sel >/dev/null 2>&1 &&
	mv "$BW_RUN/keys/sel.private" "$BW_RUN/keys/signed.example.private" &&
	printf 'sel._domainkey.signed.example %s\n' "$(grep -o '"[^"]*"' "$BW_RUN/keys/sel.txt" | tr -d '"\n')" \
		>"$BW_RUN/keys/dkim.keys"
chown -R "$BW_USER" "$BW_RUN/keys"
if bw_start ident RequireConsent yes PolicyFile "$BW_RUN/keys/policy" SenderIdentity "dkim header domain" \
	SenderIdHeader X-Customer TrustedUpstreamHosts 127.0.0.1 ReporterKeyFile "$BW_RUN/keys/dkim.keys" \
	HoldReleaseCommand "postsuper -c $BW_RUN/pf/etc -H"; then
	ok "daemon 'ident' starts"
else
	not_ok "daemon 'ident' starts"
fi
if sink_start sink "$PORT_SINK"; then ok "smtp-sink listens"; else not_ok "smtp-sink starts"; ready=0; fi
pf_setup pf "$PORT_SINK" "$PORT_C=inet:127.0.0.1:${BW_PORT[consent]}" \
	"$PORT_DEAD=inet:127.0.0.1:${BW_PORT[deadstore]}" "$PORT_R=inet:127.0.0.1:${BW_PORT[redisd]}" \
	"$PORT_I=inet:127.0.0.1:${BW_PORT[ident]}"
if pf_start pf; then ok "private Postfix listens"; else not_ok "private Postfix starts"; ready=0; fi
check "the one-click listener accepts connections" bw_wait_for 10 bw_port_listening "$PORT_HTTP" || ready=0
[ "$ready" = 1 ] || tap_done

run_case t_campaign_five
run_case t_late_bulk_removal
run_case t_unsubscribe_by_mail
run_case t_one_click
run_case t_forget
run_case t_suspended_held
run_case t_identity
run_case t_rate
run_case t_store_down
run_case t_kill_during_import
run_case t_redis_store

bw_stop consent
is "daemon 'consent' exits with status 0 on SIGTERM" "$?" 0
bw_stop deadstore
bw_stop ident
pf_stop pf
check_no_sanitizer_reports
tap_done
