#!/bin/bash
# tests/milter/ctl_consent.sh - bulkwardenctl's consent, suppress and
# forget commands against real LMDB stores made for the test: add, show,
# remove; import with bad rows (line numbers, skipped rows, exit status),
# --abort-on-error; export round trip through a second store; suppressions
# and erasure; and a large import killed with SIGKILL half way, which must
# leave whole batches only and can be run again. Speaks TAP (tests/lib.sh).
#
# Needs no daemon and no root. Environment: BW_CTL (the bulkwardenctl to
# test), CTL_BIG_ROWS (rows of the import that is killed; default 300000).

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
tap_init ctl_consent || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

BIG=${CTL_BIG_ROWS:-300000}
BATCH=100000

require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || tap_done

# mkconf NAME [KEY VALUE]...: $BW_RUN/NAME/bulkwarden.conf with a fresh store
mkconf() {
	local name=$1 dir=$BW_RUN/$1
	shift
	mkdir -p "$dir/store"
	{
		echo "Store lmdb:$dir/store"
		echo "MapSize 2G"
		echo "PhraseFile $BW_PHRASES"
		while [ $# -ge 2 ]; do
			echo "$1 $2"
			shift 2
		done
	} >"$dir/bulkwarden.conf"
}

# ctl NAME ARGS...: bulkwardenctl with that config; stdout in $out, stderr
# in $err, exit status in $rc
ctl() {
	local name=$1
	shift
	out=$(timeout 300 "$BW_CTL" -c "$BW_RUN/$name/bulkwarden.conf" "$@" 2>"$BW_RUN/stderr")
	rc=$?
	err=$(cat "$BW_RUN/stderr")
}

# has DESCRIPTION TEXT NEEDLE: ok when TEXT contains NEEDLE (a fixed string,
# line breaks included)
has() {
	if [[ "$2" == *"$3"* ]]; then
		ok "$1"
	else
		not_ok "$1"
		diag "got:  '$2'" "want, somewhere in it: '$3'"
	fi
}

# dump_ok NAME: bulkwardenctl dump of that store succeeds
dump_ok() {
	timeout 300 "$BW_CTL" -c "$BW_RUN/$1/bulkwarden.conf" dump >/dev/null
}

# consent_count NAME: consent records in the store, from a dump
consent_count() {
	timeout 300 "$BW_CTL" -c "$BW_RUN/$1/bulkwarden.conf" dump | grep -c '^{"table":"consent"'
}

# the erasure key: "ID SECRET", readable by its owner only
key=$BW_RUN/erasure.key
printf 'k1 %s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$key"
chmod 600 "$key"
mkconf a ErasureKeyFile "$key"
mkconf b
mkconf nokey

# ---------------------------------------------------------------- add, show, remove
ctl a consent add acme '<Bob@Example.COM>' --method double-opt-in --granted-at 2024-05-01T12:00:00Z \
	--source https://acme.example/join --source-ip 192.0.2.10 --confirmed-at 2024-05-01T12:05:00Z \
	--confirm-ip 2001:db8::7 --text v3 --evidence 'ticket 42' --expires-at 2030-01-01T00:00:00Z
is "consent add: exit 0" "$rc" 0
like "consent add: prints the record, domain lower-cased" "$out" \
	'^\{"sender":"acme","recipient":"Bob@example.com","granted_at":"2024-05-01T12:00:00Z","method":"double-opt-in"'
ctl a consent show acme Bob@example.com
is "consent show SENDER RCPT: exit 0" "$rc" 0
like "consent show SENDER RCPT: every field" "$out" \
	'"source":"https://acme.example/join","evidence":"ticket 42","source_ip":"192.0.2.10","confirmed_at":"2024-05-01T12:05:00Z","confirm_ip":"2001:db8::7","text":"v3","expires_at":"2030-01-01T00:00:00Z","recorded_at":'
ctl a consent show Bob@EXAMPLE.com
like "consent show RCPT: found under the normalised address" "$out" '"sender":"acme","recipient":"Bob@example.com"'
ctl a consent show --format text acme
like "consent show --format text: labelled lines" "$out" 'method +double-opt-in'
ctl a consent add acme bob@example.com --method bogus
is "consent add with an unknown method: exit 2" "$rc" 2
like "... says what is wrong" "$err" 'method: unknown \("bogus"\)'
ctl a consent add acme bob@example.com --method api --granted-at yesterday
is "consent add with a bad time: exit 2" "$rc" 2
like "... says why" "$err" 'granted_at: not an RFC 3339 time \("yesterday"\)'
ctl a consent remove acme Bob@example.com
is "consent remove: exit 0" "$rc" 0
ctl a consent show acme Bob@example.com
is "consent show after remove: exit 1 (nothing found)" "$rc" 1
ctl a consent remove acme Bob@example.com
is "consent remove of a missing record: exit 1" "$rc" 1
ctl a consent add list@acme.example carol@example.com --method api
ctl a consent show list@acme.example
like "consent show of an address that is a sender id shows its records" "$rc:$out" '^0:\{"sender":"list@acme.example","recipient":"carol@example.com"'
ctl a consent frobnicate
is "unknown subcommand: exit 2" "$rc" 2

# ---------------------------------------------------------------- import with bad rows
cat >"$BW_RUN/bad.csv" <<'EOF'
method,sender,recipient,granted_at,source,evidence,text
import,acme,one@example.com,2024-01-01T00:00:00Z,list,"upload 1, row 1",
import,acme,two@example.com,2024-13-01T00:00:00Z,list,e,
import,acme,three@example.com,2024-01-01T00:00:00Z,"a source
over two lines",e,"v ""2"""
carrier-pigeon,acme,four@example.com,2024-01-01T00:00:00Z,list,e,
import,acme,five.example.com,2024-01-01T00:00:00Z,list,e,
import,acme,six@example.com,2024-01-01T00:00:00Z,list,e,
EOF
ctl a consent import "$BW_RUN/bad.csv"
is "import with bad rows: exit 1" "$rc" 1
like "... line 3: the bad time" "$err" 'line 3: granted_at: not an RFC 3339 time'
like "... line 6: the bad method (after a field over two lines)" "$err" 'line 6: method: unknown'
like "... line 7: the bad address" "$err" 'line 7: recipient: '
like "... the report counts rows" "$out" '6 rows read, 3 imported, 3 skipped'
ctl a consent export
good=$(printf '%s\n' "$out" | grep -c '^acme,[a-z]*@example.com,')
is "... the three good rows are in the store" "$good" 3
has "... quoted fields kept" "$out" 'three@example.com,2024-01-01T00:00:00Z,import,"a source
over two lines",e,,,,"v ""2""",'

ctl b consent import --abort-on-error "$BW_RUN/bad.csv"
is "--abort-on-error with bad rows: exit 1" "$rc" 1
is "... reports every bad row" "$(printf '%s\n' "$err" | grep -c 'line [367]: ')" 3
like "... says nothing was written" "$err" 'nothing was written'
is "... and nothing was written" "$(consent_count b)" 0
ctl b consent import --abort-on-error - < <(cat "$BW_RUN/bad.csv")
is "--abort-on-error from a pipe: exit 1, nothing written" "$rc:$(consent_count b)" "1:0"
grep -v -e two@ -e four@ -e five. "$BW_RUN/bad.csv" >"$BW_RUN/good.csv"
ctl b consent import --abort-on-error - < <(cat "$BW_RUN/good.csv")
is "--abort-on-error, good rows from a pipe: exit 0, all written" "$rc:$(consent_count b)" "0:3"

mkconf c
ctl c consent import --abort-on-error - <"$BW_RUN/good.csv"
is "--abort-on-error, good rows from a file on stdin: exit 0, all written" "$rc:$(consent_count c)" "0:3"

ctl a consent import "$BW_RUN/nonexistent.csv"
is "import of a missing file: exit 2" "$rc" 2
printf 'sender,recipient,granted_at,method,source,evidence,colour\n' >"$BW_RUN/unknown.csv"
ctl a consent import "$BW_RUN/unknown.csv"
is "import with an unknown column: exit 1" "$rc" 1
like "... naming the column" "$err" 'line 1: header: unknown column "colour"'

# JSON lines, detected
printf '%s\n' '{"sender":"beta","recipient":"j@example.com","granted_at":"2024-02-02T00:00:00Z","method":"api","source":"crm","evidence":"id 9"}' \
	'{"sender":"beta","recipient":"k@example.com","granted_at":"2024-02-02T00:00:00Z","method":"api","shoe":"size"}' >"$BW_RUN/in.jsonl"
ctl a consent import "$BW_RUN/in.jsonl"
is "JSON lines import: exit 1" "$rc" 1
like "... one row imported" "$out" '2 rows read, 1 imported, 1 skipped'
like "... line 2 refused, the member named" "$err" 'line 2: unknown member "shoe"'

# ---------------------------------------------------------------- export round trip
for fmt in csv jsonl; do
	mkconf rt1
	mkconf rt2
	ctl a consent export --format $fmt
	printf '%s\n' "$out" >"$BW_RUN/export1.$fmt"
	ctl rt1 consent import "$BW_RUN/export1.$fmt"
	is "export --format $fmt imports into a second store" "$rc" 0
	ctl rt1 consent export --format $fmt
	printf '%s\n' "$out" >"$BW_RUN/export2.$fmt"
	check "export of the second store is the same ($fmt)" cmp "$BW_RUN/export1.$fmt" "$BW_RUN/export2.$fmt"
	ctl rt2 consent import "$BW_RUN/export2.$fmt"
	ctl rt2 consent export --format $fmt
	is "and again through a third store ($fmt)" "$out" "$(cat "$BW_RUN/export1.$fmt")"
	rm -rf "$BW_RUN/rt1" "$BW_RUN/rt2"
done
ctl a consent export beta
is "export SENDER: only that sender's rows" "$(printf '%s\n' "$out" | sed 1d | cut -d, -f1 | sort -u)" beta

# ---------------------------------------------------------------- suppressions
ctl a suppress add acme one@example.com --reason unsubscribe --source mailto --note 'asked twice'
is "suppress add: exit 0" "$rc" 0
like "suppress add: prints the record" "$out" '"sender":"acme","recipient":"one@example.com","reason":"unsubscribe","at":"[0-9T:Z-]+","source":"mailto","note":"asked twice"'
ctl a consent show acme one@example.com
like "an unsubscribe marks the consent withdrawn" "$out" '"withdrawn_at":'
ctl a suppress add '*' six@example.com --reason complaint
is "suppress add '*' (every sender): exit 0" "$rc" 0
ctl a suppress show acme six@example.com
like "suppress show SENDER RCPT shows the global one too" "$out" '"sender":"\*","recipient":"six@example.com","reason":"complaint"'
ctl a suppress add acme x@example.com --reason sulking
is "suppress add with an unknown reason: exit 2" "$rc" 2
# a consent import does not lift or delete a suppression
printf 'sender,recipient,granted_at,method,source,evidence\nacme,one@example.com,2024-06-01T00:00:00Z,import,list,e\n' >"$BW_RUN/again.csv"
ctl a consent import "$BW_RUN/again.csv"
ctl a suppress show acme one@example.com
is "a consent import keeps the suppression: found" "$rc" 0
like "... unchanged" "$out" '"sender":"acme","recipient":"one@example.com","reason":"unsubscribe"'
printf 'sender,recipient,reason,at,source,note\nacme,seven@example.com,bounce,2024-06-01T00:00:00Z,,"5.1.1, no such user"\nacme,eight@example.com,bounce,then,,\n' >"$BW_RUN/supp.csv"
ctl a suppress import "$BW_RUN/supp.csv"
is "suppress import with a bad row: exit 1" "$rc" 1
like "... one row imported" "$out" '2 rows read, 1 imported, 1 skipped'
like "... line 3 refused" "$err" 'line 3: at: not an RFC 3339 time'
ctl a suppress export
like "suppress export: CSV with the header" "$(printf '%s\n' "$out" | head -1)" '^sender,recipient,reason,at,source,note$'
has "suppress export: the imported row" "$out" 'acme,seven@example.com,bounce,2024-06-01T00:00:00Z,,"5.1.1, no such user"'

# ---------------------------------------------------------------- forget
victim=victim.person@example.org
ctl a consent add acme "$victim" --method single-opt-in --evidence "signed up as $victim"
ctl a consent add beta "$victim" --method api
ctl a suppress add acme "$victim" --reason unsubscribe --note "$victim asked by phone"
ctl a suppress add '*' "$victim" --reason complaint
ctl a forget "$victim"
is "forget: exit 0" "$rc" 0
like "forget: says how many records went" "$out" '4 records deleted'
hash=$(printf '%s\n' "$out" | grep -Eo '#[0-9a-f]{64}')
dump=$(timeout 300 "$BW_CTL" -c "$BW_RUN/a/bulkwarden.conf" dump)
unlike "the dump does not hold the address anywhere" "$dump" 'victim'
like "the dump holds the hashed suppressions" "$dump" "\"key\":\"acme $hash\""
ctl a suppress show "$hash"
is "suppress show of the hashed form shows both suppressions" "$rc:$(printf '%s\n' "$out" | grep -c "\"recipient\":\"$hash\"")" "0:2"
ctl a suppress show acme "$victim"
like "suppress show of the address finds the hashed record" "$out" "\"recipient\":\"$hash\",\"reason\":\"unsubscribe\""
ctl a consent show "$victim"
is "no consent record is left" "$rc" 1
ctl nokey forget "$victim"
is "forget without ErasureKeyFile: exit 2" "$rc" 2
like "... says why" "$err" 'no ErasureKeyFile'

# ---------------------------------------------------------------- exit status 3
mkdir -p "$BW_RUN/broken"
: >"$BW_RUN/broken/notadir"
printf 'Store lmdb:%s\nPhraseFile %s\n' "$BW_RUN/broken/notadir" "$BW_PHRASES" >"$BW_RUN/broken/bulkwarden.conf"
ctl broken consent import "$BW_RUN/good.csv"
is "a store that cannot be opened: exit 3" "$rc" 3
printf 'Store lmdb:%s\nBogusKey 1\n' "$BW_RUN/broken" >"$BW_RUN/broken/bulkwarden.conf"
ctl broken consent show acme
is "a bad configuration: exit 2" "$rc" 2

# ---------------------------------------------------------------- a batch that fails
mkdir -p "$BW_RUN/small/store"
printf 'Store lmdb:%s\nMapSize 2M\nPhraseFile %s\n' "$BW_RUN/small/store" "$BW_PHRASES" >"$BW_RUN/small/bulkwarden.conf"
awk 'BEGIN {
	print "sender,recipient,granted_at,method,source,evidence"
	for (i = 1; i <= 20000; i++)
		printf "s%d,u%d@example.net,2024-03-01T10:00:00Z,import,list,row %d\n", i % 3, i, i
}' >"$BW_RUN/small.csv"
ctl small consent import --batch 1000 "$BW_RUN/small.csv"
is "store full during an import: exit 3" "$rc" 3
like "... names the batch that failed" "$err" 'writing input lines [0-9]+-[0-9]+: .*MapSize'
committed=$(printf '%s\n' "$err" | sed -n 's/.*committed: every good row of input lines 1-\([0-9]*\) (\([0-9]*\) rows.*/\1 \2/p')
n=$(consent_count small)
is "... says which lines were committed, and they are what the store holds" "$committed" "$((n + 1)) $n"
like "... and that running it again is safe" "$err" 're-running the same import is safe'
sed -i 's/^MapSize 2M$/MapSize 64M/' "$BW_RUN/small/bulkwarden.conf"
ctl small consent import --batch 1000 "$BW_RUN/small.csv"
is "the same import again with a larger MapSize: exit 0, every row" "$rc:$(consent_count small)" "0:20000"

# ---------------------------------------------------------------- kill -9
mkconf big
awk -v n="$BIG" 'BEGIN {
	print "sender,recipient,granted_at,method,source,evidence"
	for (i = 1; i <= n; i++)
		printf "sender%d,user%d@domain%d.example,2024-03-01T10:00:00Z,import,list,row %d\n", \
		    i % 7, i, i % 997, i
}' >"$BW_RUN/big.csv"
"$BW_CTL" -c "$BW_RUN/big/bulkwarden.conf" consent import "$BW_RUN/big.csv" >"$BW_RUN/big.out" 2>&1 &
pid=$!
bw_track_pid "$pid"
# SIGKILL once the first batch is committed (or after 1 s), with more to come
for _ in $(seq 1 300); do
	grep -q committed "$BW_RUN/big.out" 2>/dev/null && break
	sleep 0.1
done
[ -s "$BW_RUN/big.out" ] || sleep 1
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
bw_untrack_pid "$pid"
diag "before SIGKILL: $(tr '\n' ' ' <"$BW_RUN/big.out")"
check "dump works after the import was killed" dump_ok big
n=$(consent_count big)
diag "consent records after SIGKILL: $n of $BIG"
is "whole batches only: the count ($n) is a multiple of $BATCH" "$((n % BATCH))" 0
ctl big consent import "$BW_RUN/big.csv"
is "the same import again completes: exit 0" "$rc" 0
is "... and every row is there" "$(consent_count big)" "$BIG"

tap_done
