#!/bin/bash
# tests/e2e/complaints.sh - complaints drive a sender's state, end to end:
# swaks -> a private Postfix (smtpd_milters: bulkwarden) -> smtp-sink, with
# ARF reports DKIM-signed at test time by a reporter whose key is made with
# opendkim-genkey and given to bulkwarden as ReporterKeyFile.
#
# The reporter's public key is published by dnsmasq on 127.0.0.53 and
# looked up there (ReporterNameservers): a real DNS answer. So are SPF
# records, asked for by a second daemon ('spf', SpfNameservers) behind its
# own Postfix listener; its clients pose as 192.0.2.10 with XCLIENT, as
# libspf2 lets loopback clients pass whatever the record says.
#
# The policy, scaled down so that a test can cross it: the complaint rate
# counts from 10 delivered recipients and 2 distinct complainers; at 10 %
# the sender is throttled (its message rate cut to a hundredth, so its next
# message waits with 451 4.7.1), at 25 % it is in grace for 3 seconds,
# then its mail is held in Postfix's hold queue. Forged and unsigned
# reports change nothing; a report imported twice counts once; an incident
# acknowledged in time prevents the suspension that an unanswered one
# brings (IncidentDeadline 4 s).

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/e2e/postfix.sh"
tap_init e2e-complaints || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

MSG=$BW_DATA/msg
ARFSIGN=${ARFSIGN:-$top_builddir/tests/unit/arfsign}
KEYS=$BW_RUN/keys
OUTSIDE=127.0.0.2
XCLIENT_ADDR=192.0.2.10   # TEST-NET-1: the client SPF is checked for

send() {
	local port=$1 src=$2 tag=$3
	shift 3
	swaks_send "$port" "$(mk_msg "$MSG/$src" "$tag")" "$@"
}
at_sink() { [ -n "$(sink_find sink "$1")" ]; }
ctl() { bw_ctl fb "$@"; }
held_count() { pf_queue pf | grep -c '^[0-9A-Za-z]*!'; }

# rcpts N DOMAIN: r1@DOMAIN,...,rN@DOMAIN
rcpts() {
	local i out=
	for i in $(seq 1 "$1"); do out=$out${out:+,}r$i@$2; done
	echo "$out"
}

# report NAME SENDER-ADDRESS RCPT MSGID [DOMAIN SELECTOR KEY]: an ARF abuse
# report in $KEYS/NAME.eml, signed by DOMAIN (default the trusted reporter)
report() {
	local name=$1 from=$2 rcpt=$3 msgid=$4 dom=${5:-fbl.example.net} sel=${6:-s1}
	local key=${7:-$KEYS/s1.private}
	cat >"$KEYS/$name.raw" <<EOF
From: Feedback Loop <fbl@fbl.example.net>
To: complaints@bulkwarden.test
Subject: abuse report
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <$name@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an email abuse report for a message sent to $rcpt.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: fbl/1.0
Version: 1
Original-Mail-From: <$from>
Original-Rcpt-To: <$rcpt>
Arrival-Date: Mon, 07 Dec 2026 09:58:00 +0000

--arf
Content-Type: text/rfc822-headers

From: News <$from>
To: <$rcpt>
Subject: news
Message-ID: <$msgid>

--arf--
EOF
	"$ARFSIGN" "$dom" "$sel" "$key" <"$KEYS/$name.raw" >"$KEYS/$name.eml"
}

# imp NAME: import one report; its line of output in $out
imp() { out=$(ctl complaint import "$KEYS/$1.eml" 2>/dev/null | head -n 1); }

# delivered SENDER: the recipients delivered for it, as the store counts them
delivered() {
	ctl stats | awk -v p="delivered:$1:" 'index($1, p) == 1 { n += $2 } END { print n + 0 }'
}

state_of() { ctl sender show "$1" 2>/dev/null | sed -n 's/^state: *\([a-z]*\).*/\1/p'; }

# ---------------------------------------------------------------- cases
# (1) a sender crosses 10 % and is throttled, crosses 25 % and is in grace,
# and once grace runs out its mail is held
t_thresholds() {
	local n
	send "$PORT_FB" bulk-visible.eml f1 --from news@fb.example --to "$(rcpts 19 example.net)"
	like "19 recipients: accepted" "$SMTP_REPLY" '^250 '
	check "the 19 delivered recipients reach the store" bw_wait_for 10 eval '[ "$(delivered fb.example)" = 19 ]'

	report r1 news@fb.example r1@example.net f1@bulkwarden.test
	imp r1
	like "report 1: applied, 1 of 19, still active" "$out" \
		'applied: sender=fb\.example rcpt=r1@example\.net window=1/19 from 1 recipients state=active$'
	ctl sender ack-incident fb.example --note "we are looking at it" >/dev/null 2>&1
	is "the incident is acknowledged" "$?" 0
	like "the recipient is suppressed as a complaint" "$(ctl suppress show fb.example r1@example.net 2>&1)" \
		'"reason": ?"complaint"'

	# forged: signed with another key under the reporter's name; signed by
	# a domain that is not trusted; not signed at all
	opendkim-genkey -D "$KEYS" -d fbl.example.net -s other >/dev/null 2>&1
	report forged news@fb.example r9@example.net f1@bulkwarden.test fbl.example.net s1 "$KEYS/other.private"
	imp forged
	like "a report with a forged signature is not counted" "$out" 'not counted: unauthenticated \(bad signature'
	mkdir -p "$KEYS/evil"
	opendkim-genkey -D "$KEYS/evil" -d evil.example -s s1 >/dev/null 2>&1
	report untrusted news@fb.example r8@example.net f1@bulkwarden.test evil.example s1 "$KEYS/evil/s1.private"
	imp untrusted
	like "a report signed by an untrusted domain is not counted" "$out" 'not counted: unauthenticated'
	cp "$KEYS/r1.raw" "$KEYS/unsigned.eml"
	imp unsigned
	like "an unsigned report is not counted" "$out" 'not counted: unauthenticated \(no signature'
	imp r1
	like "the same report again: a duplicate" "$out" 'duplicate: sender=fb\.example rcpt=r1@example\.net'
	n=$(ctl complaint list fb.example | wc -l)
	is "nothing forged or repeated was counted" "$n" 1
	is "no suppression for the forged report's recipient" \
		"$(ctl suppress show fb.example r9@example.net >/dev/null 2>&1; echo $?)" 1
	is "still active" "$(state_of fb.example)" active

	send "$PORT_FB" bulk-visible.eml f2 --from news@fb.example --to r20@example.net
	like "active: the next message passes" "$SMTP_REPLY" '^250 '
	check "20 delivered recipients in the store" bw_wait_for 10 eval '[ "$(delivered fb.example)" = 20 ]'

	report r2 news@fb.example r2@example.net f1@bulkwarden.test
	imp r2
	like "report 2: 2 of 20 from 2 recipients = 10 %: throttled" "$out" \
		'window=2/20 from 2 recipients state=active->throttled \(complaint rate 10\.00'
	send "$PORT_FB" bulk-visible.eml f3 --from news@fb.example --to r22@example.net
	like "throttled: the next message waits (451 4.7.1)" "$SMTP_REPLY" \
		'^451 4\.7\.1 sender fb\.example is over its message rate .*\(throttled\), try again in [0-9]+ seconds'
	is "throttled: it is not at the sink" "$(sink_find sink f3)" ""

	for i in 3 4; do
		report "r$i" news@fb.example "r$i@example.net" f1@bulkwarden.test
		imp "r$i"
	done
	report r5 news@fb.example r5@example.net f1@bulkwarden.test
	imp r5
	like "report 5: 5 of 20 = 25 %: grace" "$out" 'state=throttled->grace \(complaint rate 25\.00'
	like "sender show: grace until a time" "$(ctl sender show fb.example)" 'grace until: 20[0-9-]+T'
	sleep 3.5
	send "$PORT_FB" bulk-visible.eml f4 --from news@fb.example --to r23@example.net
	like "grace ran out: the MTA accepts the next message" "$SMTP_REPLY" '^250 '
	check "grace ran out: it waits in Postfix's hold queue" bw_wait_for 10 eval '[ "$(held_count)" -ge 1 ]'
	is "grace ran out: the sender is suspended" "$(state_of fb.example)" suspended
	check "NotifyCommand told of each change" bw_wait_for 5 eval \
		"grep -q '^fb.example active throttled complaint rate 10.00% >= 10.00%' '$BW_RUN/notify/calls' &&
		 grep -q '^fb.example throttled grace complaint rate 25.00%' '$BW_RUN/notify/calls' &&
		 grep -q '^fb.example grace suspended grace period ran out\$' '$BW_RUN/notify/calls'"
	like "the history has every step" "$(ctl sender show fb.example)" \
		$'complaint +complaint about mail to r1@example.net\n.*ack-incident .*\n.*complaint +complaint about mail to r2@example.net: complaint rate 10'
}

# (2) an incident: acknowledged in time, the sender goes on; unanswered,
# the sender is suspended when its next message comes
t_incidents() {
	send "$PORT_FB" bulk-visible.eml g1 --from news@ack.example --to "$(rcpts 20 example.org)"
	send "$PORT_FB" bulk-visible.eml g2 --from news@noack.example --to "$(rcpts 20 example.org)"
	check "both senders' deliveries reach the store" bw_wait_for 10 eval \
		'[ "$(delivered ack.example)" = 20 ] && [ "$(delivered noack.example)" = 20 ]'
	report a1 news@ack.example r1@example.org g1@bulkwarden.test
	report n1 news@noack.example r1@example.org g2@bulkwarden.test
	imp a1
	like "ack.example: one complaint, an incident" "$out" 'applied: sender=ack\.example'
	imp n1
	like "noack.example: one complaint, an incident" "$out" 'applied: sender=noack\.example'
	ctl sender ack-incident ack.example --note "answered by phone" >/dev/null 2>&1
	sleep 4.5
	send "$PORT_FB" bulk-visible.eml g3 --from news@ack.example --to r30@example.org
	check "acknowledged in time: its next message reaches the sink" bw_wait_for 20 at_sink g3
	is "acknowledged in time: still active" "$(state_of ack.example)" active
	send "$PORT_FB" bulk-visible.eml g4 --from news@noack.example --to r30@example.org
	like "unanswered: the MTA accepts the next message" "$SMTP_REPLY" '^250 '
	is "unanswered: the sender is suspended" "$(state_of noack.example)" suspended
	like "unanswered: the reason says so" "$(ctl sender show noack.example)" 'reason: +.*incident'
	is "unanswered: nothing at the sink" "$(sink_find sink g4)" ""
}

# (3) reports mailed to ComplaintAddress through Postfix, from outside:
# counted at end of message, delivered with a header saying so; a forged
# one is delivered and counts for nothing
t_intake() {
	local f
	send "$PORT_FB" bulk-visible.eml h1 --from news@mail.example --to "$(rcpts 20 example.com)"
	check "mail.example's deliveries reach the store" bw_wait_for 10 eval '[ "$(delivered mail.example)" = 20 ]'
	report m1 news@mail.example r1@example.com h1@bulkwarden.test
	swaks_send "$PORT_FB" "$KEYS/m1.eml" --from fbl@fbl.example.net --to complaints@bulkwarden.test \
		--local-interface "$OUTSIDE"
	like "a signed report mailed in: accepted" "$SMTP_REPLY" '^250 '
	check "it reaches the sink" bw_wait_for 20 eval '[ -n "$(grep -l "^Message-ID: <m1@fbl" "${SINK_DIR[sink]}"/msg.* 2>/dev/null)" ]'
	f=$(grep -l "^Message-ID: <m1@fbl" "${SINK_DIR[sink]}"/msg.* 2>/dev/null | head -n 1)
	like "it carries the verdict header" "$(sink_headers "$f" 2>/dev/null)" 'X-Bulkwarden: complaint=applied sender=mail\.example'
	like "the complaint is counted" "$(ctl complaint list mail.example)" '"rcpt":"r1@example.com"'
	check "the log says so" grep -q 'complaint from <fbl@fbl.example.net> applied: sender=mail.example rcpt=<r1@example.com>' \
		"$(bw_log fb)"
	swaks_send "$PORT_FB" "$KEYS/m1.eml" --from fbl@fbl.example.net --to complaints@bulkwarden.test \
		--local-interface "$OUTSIDE"
	check "the same report mailed twice: logged as a duplicate" bw_wait_for 10 grep -q \
		'complaint from <fbl@fbl.example.net> duplicate: sender=mail.example' "$(bw_log fb)"
	sed 's/r1@example.com/r2@example.com/' "$KEYS/m1.eml" >"$KEYS/m1-forged.eml"
	swaks_send "$PORT_FB" "$KEYS/m1-forged.eml" --from fbl@fbl.example.net --to complaints@bulkwarden.test \
		--local-interface "$OUTSIDE"
	like "a tampered report mailed in: accepted all the same" "$SMTP_REPLY" '^250 '
	check "it is logged as not counted" bw_wait_for 10 grep -q \
		'complaint from <fbl@fbl.example.net> not counted: unauthenticated' "$(bw_log fb)"
	is "it counted for nothing" "$(ctl complaint list mail.example | wc -l)" 1
}

# (4) the trace token: outbound bulk mail is stamped (with CFBL-Address,
# CFBL-Feedback-ID and Feedback-ID); a report whose reporter redacted every address
# still maps to the sender and recipient through it, and the token copied
# into another message counts for nothing
t_trace() {
	local f tok
	send "$PORT_FB" bulk-visible.eml t1 --from news@trace.example --to t1@example.com
	check "the stamped message reaches the sink" bw_wait_for 20 at_sink t1
	f=$(sink_find sink t1)
	tok=$(sink_headers "$f" | tr -d '\r' | sed -n 's/^X-Bulkwarden-Trace: //p')
	like "it carries a trace token" "$tok" '^[a-z2-7]{60,}$'
	like "and CFBL-Address" "$(sink_headers "$f")" 'CFBL-Address: complaints@bulkwarden\.test; report=arf'
	like "and CFBL-Feedback-ID, the same token" "$(sink_headers "$f" | tr -d '\r')" "CFBL-Feedback-ID: $tok"
	like "and Feedback-ID: list, sender, bulk, the mail system" "$(sink_headers "$f" | tr -d '\r')" \
		'Feedback-ID: news\.example\.com:trace\.example:bulk:bulkwarden-test'
	trace_report tr1 "t1@bulkwarden.test" "$tok"
	imp tr1
	like "a report with every address redacted maps through the token" "$out" \
		'applied: sender=trace\.example rcpt=t1@example\.com '
	trace_report tr2 "other@bulkwarden.test" "$tok"
	imp tr2
	like "the token copied into another message counts for nothing" "$out" \
		'not counted: the trace token of the original is forged: not mail bulkwarden sent'
	is "one complaint for trace.example" "$(ctl complaint list trace.example | wc -l)" 1
	if [ "${KEYSRC[0]}" = ReporterNameservers ]; then
		check "the reporter's key was looked up in DNS" \
			grep -q 'query\[TXT\] s1._domainkey.fbl.example.net' "$BW_RUN/dnsmasq.log"
	fi
}

# trace_report NAME MSGID TOKEN: a signed report on the message MSGID with
# the trace header TOKEN, its addresses redacted
trace_report() {
	cat >"$KEYS/$1.raw" <<EOF
From: Feedback Loop <fbl@fbl.example.net>
To: complaints@bulkwarden.test
Subject: abuse report
Date: Mon, 07 Dec 2026 10:00:00 +0000
Message-ID: <$1@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: fbl/1.0
Version: 1
Original-Mail-From: <redacted@example.invalid>
Original-Rcpt-To: <redacted@example.invalid>

--arf
Content-Type: text/rfc822-headers

From: <redacted@example.invalid>
To: <redacted@example.invalid>
Subject: news
Message-ID: <$2>
X-Bulkwarden-Trace: $3

--arf--
EOF
	"$ARFSIGN" fbl.example.net s1 "$KEYS/s1.private" <"$KEYS/$1.raw" >"$KEYS/$1.eml"
}

# (5) SPF of the envelope domain (SpfCheck, records from SpfZoneFile)
# through Postfix: a crashed SPF helper costs one answer (451 4.7.24), then
# a new one answers. (libspf2 lets loopback clients pass whatever the
# record says: the refusals, 550 5.7.23, are in (6), from another address.)
t_spf() {
	local filter helper
	send "$PORT_FB" bulk-visible.eml s2 --from news@pass.example --to r1@example.net
	like "SPF pass: accepted" "$SMTP_REPLY" '^250 '
	filter=$(pgrep -P "${BW_PID[fb]}" | head -n 1)
	helper=$(pgrep -P "$filter" | head -n 1)
	if [ -n "$helper" ] && kill -KILL "$helper"; then
		ok "the SPF helper process is killed"
	else
		not_ok "the SPF helper process is killed"
	fi
	sleep 0.2
	send "$PORT_FB" bulk-visible.eml s3 --from news@pass.example --to r1@example.net
	like "helper gone: that one answer is 451 4.7.24" "$SMTP_REPLY" \
		'^451 4\.7\.24 SPF check of pass\.example could not be checked for 127\.0\.0\.1'
	send "$PORT_FB" bulk-visible.eml s4 --from news@pass.example --to r1@example.net
	like "then a new helper answers" "$SMTP_REPLY" '^250 '
	check "the filter process kept running" kill -0 "$filter"
}

# (6) SPF through real DNS (SpfNameservers): dnsmasq publishes the records
# and answers REFUSED for any other name; the 'spf' daemon asks it. The
# client is 192.0.2.10 by XCLIENT, one of InternalHosts: its mail is
# outbound and unauthenticated, so SPF is checked.
t_spf_dns() {
	local x=(--xclient-addr "$XCLIENT_ADDR")
	if [ "$DNS_OK" != 1 ]; then
		ok "# SKIP dnsmasq does not serve here: no SPF through DNS"
		return
	fi
	send "$PORT_SPF" bulk-visible.eml sd1 --from news@spf-fail.example --to r1@example.net "${x[@]}"
	is "SPF fail through DNS (\"v=spf1 -all\"): refused" "$SMTP_REPLY" \
		"550 5.7.23 SPF check of spf-fail.example failed for $XCLIENT_ADDR"
	send "$PORT_SPF" bulk-visible.eml sd2 --from news@spf-refused.example --to r1@example.net "${x[@]}"
	is "no answer from DNS (REFUSED): deferred, SpfOnError tempfail" "$SMTP_REPLY" \
		"451 4.7.24 SPF check of spf-refused.example could not be checked for $XCLIENT_ADDR, try again later"
	send "$PORT_SPF" bulk-visible.eml sd3 --from news@spf-pass.example --to r1@example.net "${x[@]}"
	like "SPF pass through DNS (ip4:$XCLIENT_ADDR): accepted" "$SMTP_REPLY" '^250 '
	check "the passed message reaches the sink" bw_wait_for 20 at_sink sd3
	is "the refused message is not at the sink" "$(sink_find sink sd1)" ""
	is "the deferred message is not at the sink" "$(sink_find sink sd2)" ""
	check "the three records were asked of dnsmasq" eval \
		"grep -q 'query\[TXT\] spf-fail.example from' '$BW_RUN/dnsmasq.log' &&
		 grep -q 'query\[TXT\] spf-refused.example from' '$BW_RUN/dnsmasq.log' &&
		 grep -q 'query\[TXT\] spf-pass.example from' '$BW_RUN/dnsmasq.log'"
	check "the log says why, for the client XCLIENT named" grep -q \
		"from=<news@spf-fail.example> client=$XCLIENT_ADDR: SPF of spf-fail.example failed (fail): refused" \
		"$(bw_log spf)"
	check "the deferral is libspf2's temperror, not a lost helper" grep -q \
		"SPF of spf-refused.example could not be checked (temperror: .*spf-refused.example.*): deferred" \
		"$(bw_log spf)"
}

# ---------------------------------------------------------------- setup
ready=1
require "running as root (private Postfix, daemon drops privileges)" test "$(id -u)" -eq 0 || ready=0
require "Postfix is installed" bw_have postfix postconf postqueue postsuper smtp-sink || ready=0
require "swaks and opendkim-genkey are installed" bw_have swaks opendkim-genkey || ready=0
require "bulkwarden is built ($BW_BIN)" test -x "$BW_BIN" || ready=0
require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || ready=0
require "arfsign is built ($ARFSIGN)" test -x "$ARFSIGN" || ready=0
if [ "$ready" = 1 ]; then
	require "users $BW_USER, postfix and group postdrop exist" \
		eval 'bw_ensure_user && getent passwd postfix && getent group postdrop' || ready=0
fi
[ "$ready" = 1 ] || tap_done

bw_free_port PORT_FB && bw_free_port PORT_SINK && bw_free_port PORT_SPF
mkdir -p "$KEYS"
opendkim-genkey -D "$KEYS" -d fbl.example.net -s s1 >/dev/null 2>&1
printf 's1._domainkey.fbl.example.net %s\n' "$(grep -o '"[^"]*"' "$KEYS/s1.txt" | tr -d '"\n')" \
	>"$KEYS/reporters.keys"
check "the reporter's key is in ReporterKeyFile" grep -q '^s1._domainkey.fbl.example.net v=DKIM1; .*p=MII' \
	"$KEYS/reporters.keys"
# the reporter's key published by a real DNS server on loopback (dnsmasq),
# which bulkwarden asks (ReporterNameservers); the key file only when
# dnsmasq cannot run here
KEYSRC=(ReporterKeyFile "$KEYS/reporters.keys")
DNS_ADDR=127.0.0.53
DNS_OK=0
if bw_have dnsmasq; then
	val=$(sed 's/^[^ ]* //' "$KEYS/reporters.keys")
	# and SPF records for (6): 192.0.2.10 may send for spf-pass.example,
	# nobody for spf-fail.example; names it has no record of are REFUSED
	setsid dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address="$DNS_ADDR" \
		--port=53 --user=root --log-queries --log-facility="$BW_RUN/dnsmasq.log" \
		--txt-record="s1._domainkey.fbl.example.net,${val:0:200},${val:200}" \
		--txt-record="spf-pass.example,v=spf1 ip4:$XCLIENT_ADDR -all" \
		--txt-record="spf-fail.example,v=spf1 -all" </dev/null >/dev/null 2>&1 &
	bw_track_pid "$!"
	if bw_wait_for 5 eval "dig +time=1 +tries=1 +short @$DNS_ADDR TXT s1._domainkey.fbl.example.net | grep -q DKIM1"; then
		ok "dnsmasq on $DNS_ADDR publishes the reporter's key"
		KEYSRC=(ReporterNameservers "$DNS_ADDR")
		DNS_OK=1
	else
		ok "# SKIP dnsmasq cannot serve on $DNS_ADDR: the key comes from ReporterKeyFile"
	fi
else
	ok "# SKIP dnsmasq is not installed: the key comes from ReporterKeyFile"
fi
chmod 755 "$KEYS"
chmod 644 "$KEYS/reporters.keys"
# SPF records: 127.0.0.1 may send for pass.example
printf 'pass.example v=spf1 ip4:127.0.0.1 -all\n' >"$KEYS/spf.zone"
chmod 644 "$KEYS/spf.zone"
# NotifyCommand: writes its arguments, one call a line (daemon user or root)
mkdir -p "$BW_RUN/notify"
chmod 777 "$BW_RUN/notify"
printf '#!/bin/sh\necho "$*" >>"%s/notify/calls"\n' "$BW_RUN" >"$BW_RUN/notify/run"
chmod 755 "$BW_RUN/notify/run"
: >"$BW_RUN/notify/calls"
chmod 666 "$BW_RUN/notify/calls"
printf 'k1 %s\n' 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0 >"$KEYS/tokens.key"
chown "$BW_USER" "$KEYS/tokens.key"
chmod 600 "$KEYS/tokens.key"
if bw_start fb RequireConsent no StatsInterval 1s TrustedReporters fbl.example.net \
	TokenKeyFile "$KEYS/tokens.key" CFBLAddress complaints@bulkwarden.test FeedbackID bulkwarden-test \
	NotifyCommand "$BW_RUN/notify/run" SpfCheck yes SpfZoneFile "$KEYS/spf.zone" \
	"${KEYSRC[@]}" ComplaintMinVolume 10 ComplaintMinRecipients 2 \
	ThrottleAt 10% GraceAt 25% GracePeriod 3s IncidentDeadline 4s \
	MessageRate 600/1h:20 ThrottleFactor 0.01 ComplaintAddress complaints@bulkwarden.test; then
	ok "daemon 'fb' starts"
else
	not_ok "daemon 'fb' starts"
	tap_done
fi
# SPF through DNS, no zone file: a daemon of its own, as the SPF keys
# need a restart
if bw_start spf SpfCheck yes SpfNameservers "$DNS_ADDR" InternalHosts "127.0.0.1,::1,$XCLIENT_ADDR"; then
	ok "daemon 'spf' starts"
else
	not_ok "daemon 'spf' starts"
fi
if sink_start sink "$PORT_SINK"; then ok "smtp-sink listens"; else not_ok "smtp-sink starts"; ready=0; fi
pf_setup pf "$PORT_SINK" "$PORT_FB=inet:127.0.0.1:${BW_PORT[fb]}" "$PORT_SPF=inet:127.0.0.1:${BW_PORT[spf]}"
# XCLIENT from the tests' own client only; the address it names relays
pf_postconf pf "smtpd_authorized_xclient_hosts=127.0.0.1" "mynetworks=127.0.0.0/8 $XCLIENT_ADDR/32"
if pf_start pf; then ok "private Postfix listens"; else not_ok "private Postfix starts"; ready=0; fi
[ "$ready" = 1 ] || tap_done

diag "--- t_thresholds"
t_thresholds
diag "--- t_incidents"
t_incidents
diag "--- t_intake"
t_intake
diag "--- t_trace"
t_trace
diag "--- t_spf"
t_spf
diag "--- t_spf_dns"
t_spf_dns

bw_stop fb
is "daemon 'fb' exits with status 0 on SIGTERM" "$?" 0
bw_stop spf
is "daemon 'spf' exits with status 0 on SIGTERM" "$?" 0
pf_stop pf
check_no_sanitizer_reports
tap_done
