# tests/e2e/postfix.sh - a private Postfix instance and an SMTP sink for the
# end-to-end tests, sourced after tests/lib.sh.
#
# The instance has its own config, queue and data directories under the
# run dir, listens on one free 127.0.0.1 port, relays everything to the
# sink on another free loopback port and logs to a file. It never touches
# /etc/postfix (only read, for postfix-files) or a system-wide Postfix.
# The sink is Postfix's smtp-sink, which dumps each message it receives to
# a file of its own (-d).
#
#   sink_start sink SINK_PORT
#   pf_setup pf SINK_PORT PORT=MILTER [PORT=MILTER...]
#   pf_start pf ... pf_stop pf
#
# Each PORT=MILTER is an smtpd listener on 127.0.0.1:PORT whose
# smtpd_milters is MILTER (inet:127.0.0.1:PORT, or empty for none); the
# first one is also main.cf's smtpd_milters.

PF_MAIL_OWNER=${PF_MAIL_OWNER:-postfix}
PF_SETGID_GROUP=${PF_SETGID_GROUP:-postdrop}
SINK_USER=${SINK_USER:-nobody}
declare -gA PF_DIR=() PF_PORT=() PF_LISTEN=() SINK_DIR=()

# pf_setup NAME SINK_PORT PORT=MILTER...: write main.cf and master.cf
pf_setup() {
	local name=$1 sinkport=$2 dir l port milter
	shift 2
	dir=$BW_RUN/$name
	PF_DIR[$name]=$dir
	PF_PORT[$name]=${1%%=*}
	PF_LISTEN[$name]="$*"
	milter=${1#*=}
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
	chmod 755 "$dir" "$dir/etc" "$dir/queue"
	chown "$PF_MAIL_OWNER" "$dir/data"
	cat >"$dir/etc/main.cf" <<EOF
# private Postfix instance of the bulkwarden end-to-end tests
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = $PF_MAIL_OWNER
setgid_group = $PF_SETGID_GROUP
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = mta.bulkwarden.test
mydomain = bulkwarden.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
append_dot_mydomain = no
biff = no
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0
smtpd_banner = \$myhostname ESMTP bulkwarden-test
smtp_dns_support_level = disabled
relayhost = [127.0.0.1]:$sinkport
smtp_connect_timeout = 5s
smtp_tls_security_level = none
smtpd_tls_security_level = none
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
delay_warning_time = 0
notify_classes =
# the milter under test: a milter failure must keep the mail (4xx)
smtpd_milters = $milter
non_smtpd_milters =
milter_protocol = 6
milter_default_action = tempfail
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}
EOF
	{
		echo "# service type  private unpriv  chroot  wakeup  maxproc command"
		for l in "$@"; do
			port=${l%%=*}
			milter=${l#*=}
			echo "127.0.0.1:$port inet n  -       n       -       -       smtpd"
			echo "  -o smtpd_milters=$milter"
		done
	} >"$dir/etc/master.cf"
	cat >>"$dir/etc/master.cf" <<EOF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# pf_postconf NAME PARAM=VALUE...: change main.cf of the instance
pf_postconf() {
	local name=$1
	shift
	postconf -c "${PF_DIR[$name]}/etc" -e "$@"
}

# pf_start NAME: start the instance, wait until every smtpd listens
pf_start() {
	local name=$1 dir=${PF_DIR[$1]} l
	postfix -c "$dir/etc" check >"$dir/start.log" 2>&1 || { diag_file "$dir/start.log"; return 1; }
	postfix -c "$dir/etc" start >>"$dir/start.log" 2>&1 || { diag_file "$dir/start.log"; return 1; }
	BW_TRACK_POSTFIX+=("$dir/etc")
	for l in ${PF_LISTEN[$name]}; do
		bw_wait_for 20 bw_port_listening "${l%%=*}" && continue
		diag "postfix '$name' does not listen on 127.0.0.1:${l%%=*}"
		diag_file "$dir/start.log"
		diag_file "$dir/maillog"
		return 1
	done
	return 0
	diag_file "$dir/start.log"
	diag_file "$dir/maillog"
	return 1
}

pf_running() { postfix -c "${PF_DIR[$1]}/etc" status >/dev/null 2>&1; }
pf_stopped() { ! pf_running "$1"; }

# pf_stop NAME
pf_stop() {
	local dir=${PF_DIR[$1]} d
	postfix -c "$dir/etc" stop >/dev/null 2>&1
	bw_wait_for 10 pf_stopped "$1"
	for d in "${!BW_TRACK_POSTFIX[@]}"; do
		[ "${BW_TRACK_POSTFIX[$d]}" = "$dir/etc" ] && unset 'BW_TRACK_POSTFIX[d]'
	done
	return 0
}

# pf_reload NAME: re-read main.cf
pf_reload() { postfix -c "${PF_DIR[$1]}/etc" reload >/dev/null 2>&1; }

# pf_queue NAME: the queue listing ("Mail queue is empty" when empty)
pf_queue() { postqueue -c "${PF_DIR[$1]}/etc" -p 2>&1; }

# pf_queue_empty NAME
pf_queue_empty() { pf_queue "$1" | grep -q 'Mail queue is empty'; }

# pf_queue_count NAME: messages in the queue
pf_queue_count() {
	pf_queue "$1" | grep -cE '^[0-9A-F]{6,}[*!]? '
}

# pf_flush NAME: delete every queued message
pf_flush() { postsuper -c "${PF_DIR[$1]}/etc" -d ALL >/dev/null 2>&1; }

# pf_log NAME: path of the instance's maillog
pf_log() { echo "${PF_DIR[$1]}/maillog"; }

# ---------------------------------------------------------------- sink
# sink_start NAME PORT: smtp-sink on 127.0.0.1:PORT dumping every message
# into $BW_RUN/NAME/msg.<random hex>
sink_start() {
	local name=$1 port=$2 dir
	dir=$BW_RUN/$name
	mkdir -p "$dir/in"
	chown "$SINK_USER" "$dir/in"
	SINK_DIR[$name]=$dir/in
	setsid smtp-sink -u "$SINK_USER" -4 -h sink.bulkwarden.test -d "$dir/in/msg." \
		"127.0.0.1:$port" 64 >"$dir/sink.log" 2>&1 </dev/null &
	bw_track_pid "$!"
	bw_wait_for 10 bw_port_listening "$port" && return 0
	diag "smtp-sink does not listen on 127.0.0.1:$port"
	diag_file "$dir/sink.log"
	return 1
}

# sink_count NAME: messages received so far
sink_count() {
	local f n=0
	for f in "${SINK_DIR[$1]}"/msg.*; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo "$n"
}

# sink_find NAME TAG: the dump file of the message with Message-ID <TAG@...>
sink_find() {
	grep -l -i -- "^Message-ID: <$2@" "${SINK_DIR[$1]}"/msg.* 2>/dev/null | head -n 1
}

# sink_headers FILE: the message header as delivered (without the headers
# smtp-sink puts in front: X-Client-*, X-Helo-Args, X-Mail-Args,
# X-Rcpt-Args and its own three-line Received:)
sink_headers() {
	awk '
		/^\r?$/ { exit }
		!done && /^(X-Client-Addr|X-Client-Proto|X-Helo-Args|X-Mail-Args|X-Rcpt-Args):/ { next }
		!done && /^Received: from .*\(\[/ && !seen++ { skip = 1; next }
		skip && /^[ \t]/ { next }
		{ skip = 0; done = 1; print }
	' "$1" | tr -d '\r'
}

# sink_body FILE: the message body as delivered (smtp-sink ends the dump
# with one empty line of its own, which is not part of the message)
sink_body() {
	awk 'body { print; next } /^\r?$/ { body = 1 }' "$1" | tr -d '\r' | sed '$d'
}

# ---------------------------------------------------------------- messages
# mk_msg SRC TAG: a copy of message SRC (a file) in $BW_RUN/msgs/TAG.eml
# whose Message-ID is <TAG@bulkwarden.test>, so that the sink's copy can be
# found; TAG.body holds the body as it must arrive.
mk_msg() {
	local src=$1 tag=$2 d=$BW_RUN/msgs
	mkdir -p "$d"
	sed "s/^Message-ID: .*/Message-ID: <$tag@bulkwarden.test>/I" "$src" >"$d/$tag.eml"
	awk 'b { print; next } /^\r?$/ { b = 1 }' "$d/$tag.eml" | tr -d '\r' >"$d/$tag.body"
	echo "$d/$tag.eml"
}

# swaks_send PORT FILE [SWAKS-ARG...]: send FILE as is (envelope from
# MAIL_FROM / RCPT_TO unless given); sets SMTP_REPLY to the server's final
# reply (to the end of DATA, or the first refused command) and SWAKS_LOG.
MAIL_FROM=${MAIL_FROM:-news@example.com}
RCPT_TO=${RCPT_TO:-alice@example.net}
swaks_send() {
	local port=$1 file=$2 data
	shift 2
	data=$file.swaks
	# swaks ends the data with CRLF "." CRLF itself: drop the final newline
	printf '%s' "$(cat "$file")" >"$data"
	SWAKS_LOG=${file%.eml}.swaks.log
	swaks --server 127.0.0.1 --port "$port" --helo client.example.org \
		--from "$MAIL_FROM" --to "$RCPT_TO" --data "$data" --timeout 60 "$@" \
		>"$SWAKS_LOG" 2>&1
	SMTP_REPLY=$(awk '
		/^ -> \.\r?$/ { d = 1; next }
		d && /^<(-|\*\*) +[0-9][0-9][0-9]/ { sub(/^<(-|\*\*) +/, ""); print; exit }
	' "$SWAKS_LOG" | tr -d '\r')
	if [ -z "$SMTP_REPLY" ]; then
		SMTP_REPLY=$(awk '/^<\*\* +[0-9][0-9][0-9]/ { sub(/^<\*\* +/, ""); print; exit }' \
			"$SWAKS_LOG" | tr -d '\r')
	fi
	[ -n "$SMTP_REPLY" ] || SMTP_REPLY="(no reply: $(tail -n 1 "$SWAKS_LOG"))"
}

# ---------------------------------------------------------------- held session
# A bare SMTP client on fd SMTP_FD, for sessions that must stay open across
# a signal to the daemon. smtp_cmd sets SMTP_REPLY to the last reply line.
smtp_open() {
	exec {SMTP_FD}<>"/dev/tcp/127.0.0.1/$1" || return 1
	smtp_read
}

smtp_read() {
	local line
	SMTP_REPLY=
	while IFS= read -r -t 60 -u "$SMTP_FD" line; do
		line=${line%$'\r'}
		SMTP_REPLY=$line
		case $line in
		[0-9][0-9][0-9]-*) ;;
		*) return 0 ;;
		esac
	done
	SMTP_REPLY="(connection closed)"
	return 1
}

smtp_cmd() {
	printf '%s\r\n' "$1" >&"$SMTP_FD"
	smtp_read
}

# smtp_lines FILE [FROM [TO]]: send lines FROM..TO of FILE, dot-stuffed
smtp_lines() {
	awk -v a="${2:-1}" -v b="${3:-999999}" '
		NR >= a && NR <= b { sub(/\r$/, ""); if (substr($0, 1, 1) == ".") $0 = "." $0; printf "%s\r\n", $0 }
	' "$1" >&"$SMTP_FD"
}

smtp_close() {
	smtp_cmd QUIT
	exec {SMTP_FD}>&-
}
