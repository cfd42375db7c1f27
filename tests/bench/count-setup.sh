# count-setup.sh - sourced by perfcount.sh and coldcount.sh, with name set
# to the script's name (for messages) and phrases to the phrase file:
# checks that valgrind is there, makes a temporary directory $tmp (removed
# at exit) and sets conf to $BW_CONF, or to the configuration that
# tests/bench/run.sh gives the milter (every policy key at its default),
# written in $tmp.
for t in valgrind callgrind_annotate; do
	command -v $t >/dev/null 2>&1 || { echo "$name: $t not found" >&2; exit 2; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/store"
conf=${BW_CONF:-}
if [ -z "$conf" ]; then
	conf=$tmp/bulkwarden.conf
	cat >"$conf" <<CONF
Syslog no
LogLevel warning
Store lmdb:$tmp/store
InternalHosts 127.0.0.1
PhraseFile $phrases
CONF
fi
