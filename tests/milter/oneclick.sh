#!/bin/bash
# tests/milter/oneclick.sh - the RFC 8058 one-click listener of the real
# daemon (OneClickListen), driven with curl: a POST of
# List-Unsubscribe=One-Click writes a suppression the store shows (through
# "bulkwardenctl dump"), replays and forged tokens write nothing, a GET only
# shows a form, bad requests get their 4xx, OneClickRate limits a client
# (also one behind a local proxy), the listener survives a reload and a
# crashed filter process, and stops with the daemon. TAP on stdout.
#
# Tokens come from "bulkwardenctl token make SENDER RCPT".

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
tap_init oneclick || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

CURL=${CURL:-curl}
SENDER=acme

# ---------------------------------------------------------------- helpers
# oc_token RCPT: a token for (SENDER, RCPT) signed with the test key
oc_token() {
	bw_ctl main token make "$SENDER" "$1"
}

# oc_req [CURL ARGS...] PATH: one request to the main daemon's listener;
# sets CODE (status), BODY, HDRS (response headers)
oc_req() {
	local path=${*: -1} out
	set -- "${@:1:$#-1}"
	out=$("$CURL" -sS -m 10 -D "$BW_RUN/hdrs" -o "$BW_RUN/body" -w '%{http_code}' "$@" \
		"http://127.0.0.1:$OC_PORT$path" 2>&1)
	CODE=$out
	BODY=$(cat "$BW_RUN/body" 2>/dev/null)
	HDRS=$(tr -d '\r' <"$BW_RUN/hdrs" 2>/dev/null)
}

# oc_post PATH: the RFC 8058 one-click POST
oc_post() {
	oc_req -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-raw 'List-Unsubscribe=One-Click' "$1"
}

# suppress_lines: the suppression records in the store, one JSON line each
suppress_lines() {
	bw_ctl main dump | grep '"table" *: *"suppress"'
}

# log_has ERE: the main daemon's log has a matching line (waits a little:
# the log line may follow the response)
log_has() {
	bw_wait_for 3 grep -Eq -- "$1" "$(bw_log main)"
}

# listeners_started N: the main daemon's filter processes logged N starts
# of the listener
listeners_started() {
	[ "$(grep -c 'one-click: listening on' "$(bw_log main)")" -ge "$1" ]
}

# ---------------------------------------------------------------- prerequisites
ready=1
require "running as root (the daemon drops to user $BW_USER)" test "$(id -u)" -eq 0 || ready=0
require "curl is installed (Debian package curl)" bw_have "$CURL" || ready=0
require "bulkwarden is built ($BW_BIN)" test -x "$BW_BIN" || ready=0
require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || ready=0
if [ "$ready" = 1 ]; then
	require "user $BW_USER exists or was created" bw_ensure_user || ready=0
fi
[ "$ready" = 1 ] || tap_done

# the token key: readable by the daemon's user only
KEYS=$BW_RUN/token-keys
printf 'k1 %s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$KEYS"
chown "$BW_USER" "$KEYS"
chmod 0600 "$KEYS"

# ---------------------------------------------------------------- bulkwarden -n
bw_conf ncheck TokenKeyFile "$KEYS" OneClickListen 127.0.0.1
out=$("$BW_BIN" -n -c "${BW_CONF[ncheck]}" 2>&1)
st=$?
is "-n: OneClickListen without a port fails" "$st" 1
like "-n: ... and names the file, line and key" "$out" \
	"bulkwarden\.conf:[0-9]+: OneClickListen: \"127\.0\.0\.1\": want address:port"
for bad in "[::1]8025" "127.0.0.1:0" "127.0.0.1:65536" "localhost:8025" "::1:8025" "[::1:8025"; do
	bw_conf ncheck TokenKeyFile "$KEYS" OneClickListen "$bad"
	out=$("$BW_BIN" -n -c "${BW_CONF[ncheck]}" 2>&1)
	like "-n: OneClickListen \"$bad\" is refused" "$?:$out" '^1:.*OneClickListen: '
done
for good in "127.0.0.1:8025" "[::1]:8025" "0.0.0.0:25" "[::]:8025"; do
	bw_conf ncheck TokenKeyFile "$KEYS" OneClickListen "$good"
	out=$("$BW_BIN" -n -c "${BW_CONF[ncheck]}" 2>&1)
	like "-n: OneClickListen \"$good\" is accepted" "$?:$out" '^0:.*configuration OK'
done

# ---------------------------------------------------------------- the daemon
bw_free_port OC_PORT
if bw_start main TokenKeyFile "$KEYS" OneClickListen "127.0.0.1:$OC_PORT" OneClickRate 1000 &&
	bw_wait_for 10 bw_port_listening "$OC_PORT"; then
	ok "daemon starts; the one-click listener is on 127.0.0.1:$OC_PORT"
else
	not_ok "daemon starts; the one-click listener is on 127.0.0.1:$OC_PORT"
	diag_file "$(bw_log main)"
	tap_done
fi
check "the filter process logs that it listens" log_has "one-click: listening on 127\.0\.0\.1:$OC_PORT"

TOK=$(oc_token bob@example.com)
like "a token is made for ($SENDER, bob@example.com)" "$TOK" '^[a-z2-7]+$'

# ---------------------------------------------------------------- GET: a form, nothing written
oc_req "/u/$TOK"
is "GET of a token URL answers 200" "$CODE" 200
like "... with an HTML page" "$HDRS" '^Content-Type: text/html'
like "... holding a form that POSTs" "$BODY" '<form method="post">'
like "... List-Unsubscribe=One-Click" "$BODY" 'name="List-Unsubscribe" value="One-Click"'
like "... not to be cached" "$HDRS" '^Cache-Control: no-store'
is "a GET writes nothing" "$(suppress_lines | wc -l)" 0
check "the GET is logged with the sender and recipient" \
	log_has "one-click: client=127\.0\.0\.1 method=GET status=200 result=form: sender $SENDER rcpt bob@example\.com"
oc_req -I "/u/$TOK"
is "HEAD of a token URL answers 200" "$CODE" 200

# ---------------------------------------------------------------- POST: unsubscribed
oc_post "/u/$TOK"
is "one-click POST answers 200" "$CODE" 200
is "... unsubscribed" "$BODY" unsubscribed
like "... as text/plain" "$HDRS" '^Content-Type: text/plain'
sup=$(suppress_lines)
is "the store has one suppression" "$(printf '%s\n' "$sup" | grep -c .)" 1
like "... for ($SENDER, bob@example.com)" "$sup" "\"key\" *: *\"$SENDER bob@example\.com\""
like "... source one-click" "$sup" '"source" *: *"one-click"'
like "... reason unsubscribe" "$sup" '"reason" *: *"unsubscribe"'
check "the POST is logged: client, result, sender and recipient" \
	log_has "one-click: client=127\.0\.0\.1 method=POST status=200 result=done: sender $SENDER rcpt bob@example\.com"

# the same again: 200, nothing new
oc_post "/u/$TOK"
is "the same POST again answers 200" "$CODE" 200
is "... unsubscribed" "$BODY" unsubscribed
is "... and changes nothing in the store" "$(suppress_lines)" "$sup"
check "... logged as already" log_has "status=200 result=already: sender $SENDER rcpt bob@example\.com"

# ---------------------------------------------------------------- forged, malformed
# one character changed, in the middle (the MAC or the data it covers)
i=$((${#TOK} / 2))
c=${TOK:i:1}
if [ "$c" = a ]; then r=b; else r=a; fi
FORGED=${TOK:0:i}$r${TOK:i+1}
oc_post "/u/$FORGED"
is "a forged token (one character changed) answers 404" "$CODE" 404
is "... and nothing is written" "$(suppress_lines)" "$sup"
check "... logged as invalid" log_has "method=POST status=404 result=invalid"
oc_req "/u/$FORGED"
is "GET of a forged token answers 404" "$CODE" 404
oc_post "/u/not.a-token"
is "a last path segment that is not token-shaped answers 400" "$CODE" 400
oc_post "/"
is "a POST without a token in the path answers 404" "$CODE" 404

# ---------------------------------------------------------------- the body
TOK2=$(oc_token carol@example.com)
oc_req -X POST "/u/$TOK2"
is "a POST without a body answers 400" "$CODE" 400
like "... saying what is missing" "$BODY" 'List-Unsubscribe=One-Click'
oc_req -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-raw 'List-Unsubscribe=Yes-Please' "/u/$TOK2"
is "a POST with another value answers 400" "$CODE" 400
oc_req -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-raw "x=$(head -c 5000 /dev/zero | tr '\0' a)" "/u/$TOK2"
is "a body over 4 KB answers 413" "$CODE" 413
is "none of these wrote anything" "$(suppress_lines)" "$sup"
oc_req -X POST -F 'List-Unsubscribe=One-Click' "/u/$TOK2"
is "a multipart/form-data one-click POST answers 200" "$CODE" 200
like "... and writes the suppression" "$(suppress_lines)" "\"key\" *: *\"$SENDER carol@example\.com\""
TOK3=$(oc_token dave@example.com)
oc_req -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-raw 'a=1&List%2DUnsubscribe=One%2DClick&b=2' "/u/$TOK3/"
is "an encoded field among others (and a trailing slash) answers 200" "$CODE" 200

# ---------------------------------------------------------------- methods
oc_req -X PUT --data-raw 'List-Unsubscribe=One-Click' "/u/$TOK"
is "PUT answers 405" "$CODE" 405
like "... with Allow: GET, HEAD, POST" "$HDRS" '^Allow: GET, HEAD, POST'
oc_req -X DELETE "/u/$TOK"
is "DELETE answers 405" "$CODE" 405

# ---------------------------------------------------------------- stale: a newer consent
TOK4=$(oc_token erin@example.com)
sleep 2   # the consent below is given after the token was issued
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf '{"table":"consent","key":"%s erin@example.com","value":{"granted_at":"%s","method":"double-opt-in","source":"test form","evidence":"test"}}\n' \
	"$SENDER" "$now" | bw_ctl main restore >/dev/null
before=$(suppress_lines)
oc_post "/u/$TOK4"
is "a token older than the consent in force answers 200" "$CODE" 200
like "... saying it was not applied" "$BODY" '^not unsubscribed'
is "... and writes nothing" "$(suppress_lines)" "$before"
check "... logged as stale" log_has "status=200 result=stale: sender $SENDER rcpt erin@example\.com"

# ---------------------------------------------------------------- rate limit, after a reload
sed -i 's/^OneClickRate .*/OneClickRate 5/' "${BW_CONF[main]}"
bw_signal main HUP
check "reload (OneClickRate 5) is logged" log_has "reload: configuration .* loaded \(generation [2-9]"
codes=
for _ in 1 2 3 4 5 6; do
	oc_req "/u/$TOK"
	codes="$codes $CODE"
done
is "OneClickRate 5: five requests pass, the sixth answers 429" "$codes" " 200 200 200 200 200 429"
like "... with Retry-After" "$HDRS" '^Retry-After: [0-9]+$'
check "... logged once" log_has "client=127\.0\.0\.1 method=GET status=429 result=rate-limited"
oc_req -H 'X-Forwarded-For: 198.51.100.1, 192.0.2.7' "/u/$TOK"
is "another client behind a local proxy (X-Forwarded-For) is not limited" "$CODE" 200
check "... and is logged as itself, via the proxy" \
	log_has "client=192\.0\.2\.7 via=127\.0\.0\.1 method=GET status=200"
oc_req "/u/$TOK"
is "the limited client is still limited" "$CODE" 429

# ---------------------------------------------------------------- a crashed filter process
sup_pid=${BW_PID[main]}
child=$(pgrep -P "$sup_pid" | head -n 1)
if [ -n "$child" ] && kill -KILL "$child" 2>/dev/null && bw_wait_for 20 listeners_started 2; then
	ok "the filter process is killed and restarted"
else
	not_ok "the filter process is killed and restarted"
	diag_file "$(bw_log main)"
fi
TOK5=$(oc_token frank@example.com)
oc_req -H 'X-Forwarded-For: 203.0.113.5' -X POST --data-raw 'List-Unsubscribe=One-Click' "/u/$TOK5"
is "the new filter process answers on the same listener" "$CODE" 200
like "... and unsubscribes" "$(suppress_lines)" "\"key\" *: *\"$SENDER frank@example\.com\""

# ---------------------------------------------------------------- IPv6
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
	bw_free_port OC6_PORT
	if bw_start v6 TokenKeyFile "$KEYS" OneClickListen "[::1]:$OC6_PORT" &&
		bw_wait_for 10 bw_port_listening "$OC6_PORT"; then
		code=$("$CURL" -sS -m 10 -o /dev/null -w '%{http_code}' "http://[::1]:$OC6_PORT/u/$TOK")
		is "a listener on [::1] answers a GET" "$code" 200
	else
		not_ok "a listener on [::1] answers a GET"
		diag_file "$(bw_log v6)"
	fi
	if bw_stop v6; then ok "daemon 'v6' exits with status 0 on SIGTERM"; else not_ok "daemon 'v6' exits with status 0 on SIGTERM"; fi
else
	ok "# SKIP no ::1 on this host"
fi

# ---------------------------------------------------------------- a late store, a low port
# The store cannot be opened at first (a directory the daemon's user cannot
# enter): the listener answers 503 until the filter process opens it. Its
# port is below 1024: bound before privileges are dropped.
LATE_STORE=$BW_RUN/late-store
mkdir -p "$LATE_STORE"
chown root "$LATE_STORE"
chmod 0700 "$LATE_STORE"
LOW_PORT=
for p in $(shuf -i 600-999 -n 100); do
	bw_port_in_use "$p" || { LOW_PORT=$p; break; }
done
if [ -n "$LOW_PORT" ] && bw_start late TokenKeyFile "$KEYS" OneClickListen "127.0.0.1:$LOW_PORT" \
	Store "lmdb:$LATE_STORE" StatsInterval 1s && bw_wait_for 10 bw_port_listening "$LOW_PORT"; then
	ok "a daemon whose listener is on a port below 1024 starts without its store"
	TOK6=$(oc_token grace@example.com)
	code=$("$CURL" -sS -m 10 -D "$BW_RUN/hdrs" -o /dev/null -w '%{http_code}' \
		--data-raw 'List-Unsubscribe=One-Click' "http://127.0.0.1:$LOW_PORT/u/$TOK6")
	is "without the store a one-click POST answers 503" "$code" 503
	like "... with Retry-After" "$(tr -d '\r' <"$BW_RUN/hdrs")" '^Retry-After: [0-9]+$'
	chown -R "$BW_USER" "$LATE_STORE"
	if bw_wait_for 15 grep -q "store: .* is open now" "$(bw_log late)"; then
		code=$("$CURL" -sS -m 10 -o /dev/null -w '%{http_code}' \
			--data-raw 'List-Unsubscribe=One-Click' "http://127.0.0.1:$LOW_PORT/u/$TOK6")
		is "once the store opens, the same POST answers 200" "$code" 200
	else
		not_ok "once the store opens, the same POST answers 200"
		diag_file "$(bw_log late)"
	fi
	if bw_stop late; then ok "daemon 'late' exits with status 0 on SIGTERM"; else not_ok "daemon 'late' exits with status 0 on SIGTERM"; fi
else
	not_ok "a daemon whose listener is on a port below 1024 starts without its store"
	[ -n "${BW_DIR[late]:-}" ] && diag_file "$(bw_log late)"
fi

# ---------------------------------------------------------------- stop
if bw_stop main; then
	ok "daemon 'main' exits with status 0 on SIGTERM"
else
	not_ok "daemon 'main' exits with status 0 on SIGTERM"
	diag_file "$(bw_log main)"
fi
check "the listener was stopped" grep -q "one-click: stopped" "$(bw_log main)"
if bw_port_listening "$OC_PORT"; then
	not_ok "nothing listens on $OC_PORT any more"
else
	ok "nothing listens on $OC_PORT any more"
fi
check_no_sanitizer_reports
tap_done
