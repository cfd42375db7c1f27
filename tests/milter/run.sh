#!/bin/bash
# tests/milter/run.sh - the milter protocol layer: Debian's miltertest
# drives the real daemon over its socket, one Lua script per topic
# (tests/milter/*.lua, helpers in bw.lua). The scripts print "ok - ..." /
# "not ok - ..." lines; this runner numbers them and speaks TAP.
#
# To add a script: write tests/milter/NAME.lua and add a run_script line
# below naming the daemon it talks to.

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
tap_init milter || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

MILTERTEST=${MILTERTEST:-miltertest}
MT_DIR=$top_srcdir/tests/milter

# run_script SCRIPT DAEMON [NAME=VALUE...]: run one Lua script against a
# started daemon (NAME=VALUE: more globals for the script)
run_script() {
	local script=$1 name=$2 out st line extra=()
	shift 2
	for line in "$@"; do extra+=(-D "$line"); done
	if [ -z "${BW_PID[$name]:-}" ]; then
		not_ok "$script: daemon '$name' is running"
		return
	fi
	out=$("$MILTERTEST" -s "$MT_DIR/$script" \
		-D socket="${BW_SOCK[$name]}" -D libdir="$MT_DIR" -D datadir="$BW_DATA" \
		-D pid="${BW_PID[$name]}" -D conf="${BW_CONF[$name]}" -D log="$(bw_log "$name")" \
		"${extra[@]}" 2>"$BW_RUN/$script.err")
	st=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "$script: ${line#ok - }" ;;
		"not ok - "*) not_ok "$script: ${line#not ok - }" ;;
		"#"*) echo "$line" ;;
		*) diag "$line" ;;
		esac
	done <<<"$out"
	if [ "$st" -eq 0 ]; then
		ok "$script: ran to the end"
	else
		not_ok "$script: ran to the end (miltertest exit $st)"
		diag_file "$BW_RUN/$script.err"
		diag_file "$(bw_log "$name")"
	fi
}

# ---------------------------------------------------------------- prerequisites
ready=1
require "running as root (the daemon drops to user $BW_USER)" test "$(id -u)" -eq 0 || ready=0
require "miltertest is installed (Debian package miltertest)" bw_have "$MILTERTEST" || ready=0
require "bulkwarden is built ($BW_BIN)" test -x "$BW_BIN" || ready=0
if [ "$ready" = 1 ]; then
	require "user $BW_USER exists or was created" bw_ensure_user || ready=0
fi
[ "$ready" = 1 ] || tap_done

# ---------------------------------------------------------------- daemons
# main: enforce; monitor: Mode monitor; reload: enforce, its config is
# rewritten and reloaded by reload.lua
# consent: RequireConsent, news@example.com a bulk sender, records below
mkdir -p "$BW_RUN/keys"
printf 'k1 %s\n' 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
	>"$BW_RUN/keys/tokens.key"
printf 'bulk-sender news@example.com\n' >"$BW_RUN/keys/policy"
chmod 600 "$BW_RUN/keys/tokens.key"
chown -R "$BW_USER" "$BW_RUN/keys"
for d in "main BulkRecipients 3" "monitor Mode monitor" "reload" \
	"consent RequireConsent yes PolicyFile $BW_RUN/keys/policy TokenKeyFile $BW_RUN/keys/tokens.key UnsubscribeAddress unsubscribe@lists.example.com"; do
	set -- $d
	if bw_start "$@"; then
		ok "daemon '$1' starts and listens on ${BW_SOCK[$1]}"
	else
		not_ok "daemon '$1' starts and listens"
		BW_PID[$1]=
	fi
done
if [ -n "${BW_PID[consent]}" ]; then
	check "consent records written with bulkwardenctl" eval '{
		bw_ctl consent consent add example.com ann@example.net --method double-opt-in &&
		bw_ctl consent consent add example.org ann@example.net --method single-opt-in &&
		bw_ctl consent consent add example.com cat@example.net --method import &&
		bw_ctl consent suppress add example.com cat@example.net --reason complaint; } >/dev/null' 
	TOKEN=$(bw_ctl consent token make example.com ann@example.net)
fi

# ---------------------------------------------------------------- scripts
run_script verdicts.lua main
run_script chunks.lua main
run_script session.lua main
run_script monitor.lua monitor
run_script reload.lua reload
run_script consent.lua consent token="$TOKEN"

# ---------------------------------------------------------------- shutdown
for d in main monitor reload consent; do
	[ -n "${BW_PID[$d]:-}" ] || continue
	if bw_stop "$d"; then
		ok "daemon '$d' exits with status 0 on SIGTERM"
	else
		not_ok "daemon '$d' exits with status 0 on SIGTERM"
		diag_file "$(bw_log "$d")"
	fi
done
check_no_sanitizer_reports
tap_done
