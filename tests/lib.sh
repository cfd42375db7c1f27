# tests/lib.sh - shared helpers of the shell test layers (tests/milter,
# tests/e2e): TAP output, one run directory per layer in the build tree,
# free loopback ports, the life cycle of bulkwarden daemons started with a
# generated config, and a cleanup trap that stops everything a test started
# (by process id, never by name).
#
# A layer script does:
#   . "$top_srcdir/tests/lib.sh"
#   tap_init e2e               # run dir tests/run/e2e in the build tree
#   bw_start main Mode monitor # a daemon with one key overridden
#   check "what" some_command args
#   tap_done                   # the plan ("1..N") comes last
#
# Environment: top_srcdir and top_builddir (exported by "make check");
# BW_BIN and BW_CTL may point at other binaries; BW_KEEP_RUN=1 keeps the
# run directory of a passing run (a failing run always keeps it).

# ---------------------------------------------------------------- paths
if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
if [ -z "${top_builddir:-}" ]; then
	if [ -x "$PWD/milter/bulkwarden" ]; then top_builddir=$PWD; else top_builddir=$top_srcdir; fi
fi
export top_srcdir top_builddir
BW_BIN=${BW_BIN:-$top_builddir/milter/bulkwarden}
BW_CTL=${BW_CTL:-$top_builddir/milter/bulkwardenctl}
BW_PHRASES=${BW_PHRASES:-$top_srcdir/conf/unsubscribe-phrases}
BW_DATA=$top_srcdir/tests/data
BW_USER=${BW_USER:-bulkwarden}
# seconds to wait for a daemon to come up or go down (sanitizer builds are slow)
BW_WAIT=${BW_WAIT:-30}

# Sanitizer builds: stop at the first error and say so on stderr (the
# daemon's stderr is its log file, which the layers scan at the end).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---------------------------------------------------------------- TAP
tap_n=0
tap_failed=0

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# diag TEXT...: comment lines, each prefixed with "# "
diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

# diag_file FILE [LINES]: the last LINES (default 20) lines of FILE as comments
diag_file() {
	[ -f "$1" ] || { diag "($1: no such file)"; return 0; }
	diag "--- ${1#"$BW_RUN"/} (last ${2:-20} lines)"
	tail -n "${2:-20}" "$1" | sed 's/^/#   /'
}

# check DESCRIPTION COMMAND [ARG...]: ok when the command succeeds; its
# output is shown as comments when it fails.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		[ -n "$out" ] && diag "$out"
	fi
	return 0
}

# is DESCRIPTION GOT WANT: ok when the two strings are equal
is() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  '$2'" "want: '$3'"
	fi
}

# like DESCRIPTION GOT ERE: ok when GOT matches the extended regex
like() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  '$2'"
		diag "want: /$3/"
	fi
}

# unlike DESCRIPTION GOT ERE: ok when GOT does not match
unlike() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		not_ok "$1"
		diag "got:  '$2'"
		diag "must not match: /$3/"
	else
		ok "$1"
	fi
}

# require DESCRIPTION COMMAND...: a prerequisite; reported as a test, so a
# missing tool is a failure, not a skip. Returns the command's status.
require() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		ok "$desc"
		return 0
	fi
	not_ok "$desc"
	return 1
}

# tap_done: print the plan, clean up. The exit status is 0 whenever the
# plan was printed: failures are reported as "not ok" lines.
tap_done() {
	echo "1..$tap_n"
	bw_cleanup
	if [ "$tap_failed" -eq 0 ] && [ "${BW_KEEP_RUN:-0}" != 1 ] && [ -n "${BW_RUN:-}" ]; then
		rm -rf "$BW_RUN"
		[ -L "${BW_RUN_LINK:-}" ] && rm -f "$BW_RUN_LINK"
	elif [ -n "${BW_RUN:-}" ]; then
		echo "# run directory kept: $BW_RUN" >&2
	fi
	trap - EXIT
	exit 0
}

# ---------------------------------------------------------------- run dir
declare -ga BW_TRACK_PIDS=()     # every background process we started
declare -ga BW_TRACK_POSTFIX=()  # private Postfix config dirs we started
declare -gA BW_PID=() BW_DIR=() BW_SOCK=() BW_PORT=() BW_CONF=()
declare -gA BW_PORTS_GIVEN=()

# tap_init LAYER: run dir $top_builddir/tests/run/LAYER (fresh), traps.
# When the build tree cannot be reached by the unprivileged users the
# daemons run as (a build under /root), the run dir is a mktemp directory
# and tests/run/LAYER is a symlink to it.
tap_init() {
	local layer=$1 link
	case $layer in
	milter) BW_PORT_BASE=20000 ;;
	e2e) BW_PORT_BASE=24000 ;;
	*) BW_PORT_BASE=28000 ;;
	esac
	link=$top_builddir/tests/run/$layer
	trap 'bw_cleanup' EXIT
	trap 'bw_cleanup; exit 130' INT
	trap 'bw_cleanup; exit 143' TERM
	mkdir -p "$top_builddir/tests/run" || return 1
	if [ -L "$link" ]; then
		case $(basename "$(readlink "$link")") in
		bulkwarden-"$layer".??????) rm -rf "$(readlink "$link")" ;;
		esac
		rm -f "$link"
	fi
	rm -rf "$link"
	mkdir -p "$link" && chmod 755 "$link"
	BW_RUN=$link
	BW_RUN_LINK=$link
	if [ "$(id -u)" -eq 0 ] && bw_ensure_user >/dev/null 2>&1 &&
	    ! runuser -u "$BW_USER" -- test -x "$link" 2>/dev/null; then
		rmdir "$link"
		BW_RUN=$(mktemp -d -t "bulkwarden-$layer.XXXXXX") || return 1
		chmod 755 "$BW_RUN"
		ln -s "$BW_RUN" "$link"
		diag "build tree not reachable by user $BW_USER: run dir is $BW_RUN"
	fi
	# the daemon re-reads its files on reload, as $BW_USER
	if [ "$(id -u)" -eq 0 ] && [ -f "$BW_PHRASES" ] &&
	    ! runuser -u "$BW_USER" -- test -r "$BW_PHRASES" 2>/dev/null; then
		cp "$BW_PHRASES" "$BW_RUN/unsubscribe-phrases"
		BW_PHRASES=$BW_RUN/unsubscribe-phrases
	fi
	export BW_RUN
}

# bw_ensure_user: the unprivileged user the daemon drops to
bw_ensure_user() {
	getent passwd "$BW_USER" >/dev/null && return 0
	useradd --system --no-create-home --shell /usr/sbin/nologin "$BW_USER"
}

# ---------------------------------------------------------------- ports
# bw_port_in_use PORT: something on this host has PORT as a local TCP port
bw_port_in_use() {
	local hex
	hex=$(printf ':%04X ' "$1")
	grep -q -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# bw_port_listening PORT: some socket listens on PORT (state 0A)
bw_port_listening() {
	local hex
	hex=$(printf ':%04X' "$1")
	awk -v p="$hex" '$2 ~ p"$" && $4 == "0A" { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# bw_free_port VAR: a free TCP port on 127.0.0.1, below the ephemeral range,
# never handed out twice in one run. Each layer draws from its own range
# (BW_PORT_BASE, set by tap_init) so that layers running in parallel under
# "make -j check" do not pick the same port.
BW_PORT_BASE=20000
bw_free_port() {
	local p
	for _ in $(seq 1 500); do
		p=$((BW_PORT_BASE + (RANDOM * 32768 + RANDOM) % 4000))
		[ -n "${BW_PORTS_GIVEN[$p]:-}" ] && continue
		bw_port_in_use "$p" && continue
		BW_PORTS_GIVEN[$p]=1
		printf -v "$1" '%s' "$p"
		return 0
	done
	return 1
}

# bw_wait_for SECONDS COMMAND...: poll every 0.1 s until the command succeeds
bw_wait_for() {
	local t=$(($1 * 10))
	shift
	while [ "$t" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		t=$((t - 1))
	done
	"$@"
}

# ---------------------------------------------------------------- processes
bw_track_pid() { BW_TRACK_PIDS+=("$1"); }

# bw_untrack_pid PID: it was reaped; its number may be reused, forget it
bw_untrack_pid() {
	local i
	for i in "${!BW_TRACK_PIDS[@]}"; do
		[ "${BW_TRACK_PIDS[$i]}" = "$1" ] && unset 'BW_TRACK_PIDS[i]'
	done
	return 0
}

# bw_kill_tree PID: TERM the process and its children, KILL what is left.
# Daemons are started in a process group of their own (setsid), so a child
# the daemon forked is found even after its parent died.
bw_kill_tree() {
	local pid=$1 kids k group=
	[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] && group=-
	kids=$(pgrep -P "$pid" 2>/dev/null)
	if [ -n "$group" ]; then
		kill -TERM -- "-$pid" 2>/dev/null
	else
		kill -TERM "$pid" 2>/dev/null
	fi
	bw_wait_for 5 bw_gone "$pid" || kill -KILL "$pid" 2>/dev/null
	for k in $kids; do
		bw_wait_for 2 bw_gone "$k" || kill -KILL "$k" 2>/dev/null
	done
	[ -n "$group" ] && kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	bw_untrack_pid "$pid"
	return 0
}

bw_gone() { bw_gone_or_zombie "$1"; }

bw_cleanup() {
	local d p
	for d in "${BW_TRACK_POSTFIX[@]}"; do
		[ -n "$d" ] || continue
		postfix -c "$d" stop >/dev/null 2>&1 || postfix -c "$d" abort >/dev/null 2>&1
	done
	BW_TRACK_POSTFIX=()
	for p in "${BW_TRACK_PIDS[@]}"; do
		[ -n "$p" ] && bw_kill_tree "$p"
	done
	BW_TRACK_PIDS=()
}

# ---------------------------------------------------------------- daemon
# bw_conf NAME [KEY VALUE]...: write $BW_RUN/NAME/bulkwarden.conf (path in
# BW_CONF[NAME]) with the test defaults, each KEY given replacing the
# default ("-" as VALUE drops the key). The socket is inet on a free port
# unless Socket is given; the port stays the same when NAME is rewritten.
bw_conf() {
	local name=$1 dir port conf k
	shift
	dir=$BW_RUN/$name
	mkdir -p "$dir/store"
	if [ -z "${BW_PORT[$name]:-}" ]; then
		bw_free_port port || return 1
		BW_PORT[$name]=$port
	fi
	BW_DIR[$name]=$dir
	conf=$dir/bulkwarden.conf
	{
		echo "# generated by tests/lib.sh for test daemon '$name'"
		echo "Socket inet:${BW_PORT[$name]}@127.0.0.1"
		echo "UserID $BW_USER"
		echo "PidFile $dir/bulkwarden.pid"
		echo "Syslog no"
		echo "LogLevel debug"
		echo "Store lmdb:$dir/store"
		echo "Mode enforce"
		echo "InternalHosts 127.0.0.1,::1"
		echo "PhraseFile $BW_PHRASES"
		echo "OnStoreError tempfail"
		# the consent tests turn it on; the others send to recipients without records
		echo "RequireConsent no"
	} >"$conf.tmp"
	while [ $# -ge 2 ]; do
		k=$1
		awk -v k="$k" 'tolower($1) != tolower(k)' "$conf.tmp" >"$conf.tmp2" &&
			mv "$conf.tmp2" "$conf.tmp"
		[ "$2" = "-" ] || echo "$1 $2" >>"$conf.tmp"
		shift 2
	done
	mv "$conf.tmp" "$conf"
	case $(grep -i '^Socket ' "$conf") in
	*unix:*) BW_SOCK[$name]=unix:$(sed -n 's/^Socket unix://Ip' "$conf") ;;
	*) BW_SOCK[$name]=inet:${BW_PORT[$name]}@127.0.0.1 ;;
	esac
	chown -R "$BW_USER" "$dir"
	BW_CONF[$name]=$conf
}

# bw_socket_ready NAME: the daemon's socket accepts connections
bw_socket_ready() {
	case ${BW_SOCK[$1]} in
	unix:*) [ -S "${BW_SOCK[$1]#unix:}" ] ;;
	inet:*) bw_port_listening "${BW_PORT[$1]}" ;;
	esac
}

# bw_start NAME [KEY VALUE]...: write the config (see bw_conf), start
# "bulkwarden -f" with stderr in $BW_RUN/NAME/daemon.log, wait until the
# socket listens and the pid file exists. Returns 1 (with the log as
# comments) when it does not come up.
bw_start() {
	local name=$1 conf pid dir t
	bw_conf "$@" || return 1
	conf=${BW_CONF[$name]}
	dir=${BW_DIR[$name]}
	rm -f "$dir/bulkwarden.pid"
	setsid "$BW_BIN" -c "$conf" -f >>"$dir/daemon.log" 2>&1 </dev/null &
	pid=$!
	bw_track_pid "$pid"
	BW_PID[$name]=$pid
	t=$((BW_WAIT * 10))
	while [ "$t" -gt 0 ]; do
		bw_up "$name"
		case $? in
		0) return 0 ;;
		2) break ;;
		esac
		sleep 0.1
		t=$((t - 1))
	done
	diag "daemon '$name' did not come up"
	diag_file "$dir/daemon.log"
	return 1
}

bw_up() {
	bw_gone_or_zombie "${BW_PID[$1]}" && return 2
	bw_socket_ready "$1" && [ -s "${BW_DIR[$1]}/bulkwarden.pid" ]
}

# bw_pidfile_pid NAME: the pid the daemon wrote
bw_pidfile_pid() { cat "${BW_DIR[$1]}/bulkwarden.pid" 2>/dev/null; }

# bw_signal NAME SIG: signal the supervising parent
bw_signal() { kill -"$2" "${BW_PID[$1]}"; }

# bw_stop NAME: SIGTERM to the supervisor, wait; returns its exit status,
# 124 when it did not exit in time, 125 when it exited but left processes
# of its group behind (both are then KILLed).
bw_stop() {
	local pid=${BW_PID[$1]} st
	[ -n "$pid" ] || return 0
	BW_PID[$1]=
	kill -TERM "$pid" 2>/dev/null
	if ! bw_wait_for "$BW_WAIT" bw_gone_or_zombie "$pid"; then
		bw_kill_tree "$pid"
		return 124
	fi
	wait "$pid"
	st=$?
	bw_untrack_pid "$pid"
	if ! bw_wait_for 5 bw_group_gone "$pid"; then
		diag "daemon '$1' exited but left processes behind: $(pgrep -g "$pid" | tr '\n' ' ')"
		kill -KILL -- "-$pid" 2>/dev/null
		return 125
	fi
	return "$st"
}

bw_group_gone() { ! pgrep -g "$1" >/dev/null 2>&1; }

# a child of this shell that exited is a zombie until waited for
bw_gone_or_zombie() {
	local s
	s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$s" ] || [ "$s" = Z ]
}

# bw_ctl NAME ARGS...: bulkwardenctl with the daemon NAME's config (exit
# status 124 when it hangs)
bw_ctl() {
	local name=$1
	shift
	timeout "$BW_WAIT" "$BW_CTL" -c "${BW_CONF[$name]}" "$@"
}

# bw_log NAME: path of the daemon's log
bw_log() { echo "${BW_DIR[$1]}/daemon.log"; }

# bw_sanitizer_reports: every AddressSanitizer / UBSan / LeakSanitizer
# report in the daemon logs of this run, as "file: line"
BW_SAN_RE='ERROR: (Address|Leak|Memory|Thread)Sanitizer|Sanitizer has encountered a fatal error|Sanitizer:DEADLYSIGNAL|runtime error:|SUMMARY: (Address|Undefined|Leak)'
bw_sanitizer_reports() {
	grep -EH -- "$BW_SAN_RE" "$BW_RUN"/*/daemon.log 2>/dev/null
}

# check_no_sanitizer_reports: one test over all daemon logs of the layer
check_no_sanitizer_reports() {
	local r
	r=$(bw_sanitizer_reports)
	if [ -z "$r" ]; then
		ok "no sanitizer report in any daemon log"
	else
		not_ok "no sanitizer report in any daemon log"
		diag "$r"
	fi
}

# bw_have TOOL...: every tool is on PATH (or an executable path)
bw_have() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || return 1
	done
}
