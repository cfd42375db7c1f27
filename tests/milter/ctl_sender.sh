#!/bin/bash
# tests/milter/ctl_sender.sh - bulkwardenctl's sender and rate commands
# against a real LMDB store made for the test: list and show, suspend,
# grace, acknowledge, resume, resolve --release (with a release command
# that records what it was given, and one that fails), rate show and
# reset, and the notes kept in the sender's history. Speaks TAP
# (tests/lib.sh). Needs no daemon and no root.

. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
tap_init ctl_sender || { echo "1..1"; echo "not ok 1 - cannot create the run directory"; exit 0; }

require "bulkwardenctl is built ($BW_CTL)" test -x "$BW_CTL" || tap_done

dir=$BW_RUN/s
mkdir -p "$dir/store"
# the release command: writes its arguments to a file, fails when told to
cat >"$dir/release" <<EOS
#!/bin/sh
[ -e "$dir/fail" ] && exit 3
echo "\$@" >>"$dir/released"
EOS
chmod +x "$dir/release"
mkconf() {
	{
		echo "Store lmdb:$dir/store"
		echo "PhraseFile $BW_PHRASES"
		echo "PolicyFile $dir/policy"
		echo "MessageRate 3600/1h:60"
		echo "HoldReleaseCommand $dir/release -H"
		echo "GracePeriod 2h"
	} >"$dir/bulkwarden.conf"
	printf 'sender-class big message-rate=100/1m recipient-rate=5000/1h\nsender auth:bigco class=big\n' >"$dir/policy"
}
mkconf

ctl() {
	out=$(timeout 60 "$BW_CTL" -c "$dir/bulkwarden.conf" "$@" 2>"$BW_RUN/stderr")
	rc=$?
	err=$(cat "$BW_RUN/stderr")
}

# a held message as the daemon records it (the store's sender table)
held() {
	printf '{"table":"sender","key":"%s %s","value":{"at":"2026-12-01T10:00:00.000Z"}}\n' "$1" "$2" \
		>"$dir/held.jsonl"
	timeout 60 "$BW_CTL" -c "$dir/bulkwarden.conf" restore "$dir/held.jsonl" >/dev/null
}

ctl sender show acme
is "show of an unknown sender exits 0" "$rc" 0
like "an unknown sender is active, without a record" "$out" 'acme \(no record: active\)'

ctl sender suspend acme --note "complaints from the spring batch"
is "suspend exits 0" "$rc" 0
is "suspend says so" "$out" "sender acme: suspend; now suspended"
ctl sender suspend acme
is "suspend again: exits 0" "$rc" 0
is "suspend again: says it already is" "$out" "sender acme: already suspended"

ctl sender list
is "list exits 0" "$rc" 0
like "list shows acme suspended" "$out" $'\nacme +suspended +20[0-9-]+T[0-9:.]+Z +held=0 +suspended by an admin'
ctl sender list --format json
like "list as JSON" "$out" '^\{"sender":"acme","state":"suspended","since":"[^"]+","held":0,"reason":"suspended by an admin"\}$'

held acme 4Q1ABC
held acme 4Q2DEF
held acmex 9ZZZ
ctl sender show acme
like "show: state and reason" "$out" $'state: +suspended since .*\nreason: +suspended by an admin'
like "show: the held queue ids" "$out" $'held: +2 messages\n +4Q1ABC +held 2026-12-01T10:00:00.000Z\n +4Q2DEF'
like "show: the note in the history" "$out" 'suspend +complaints from the spring batch'
ctl sender show --format json acme
like "show as JSON: held ids" "$out" '"held":\[\{"queue_id":"4Q1ABC","at":"2026-12-01T10:00:00.000Z"\},\{"queue_id":"4Q2DEF"'

# a release command that fails: nothing is forgotten
touch "$dir/fail"
ctl sender resolve acme --release --note "sender cleaned its list"
is "resolve with a failing release command: exit 1" "$rc" 1
like "it says the ids stay recorded" "$err" 'failed; the 2 queue ids stay recorded'
ctl sender show acme
like "the held ids are still there" "$out" 'held: +2 messages'
like "the resolve itself was done" "$out" 'state: +active'
rm -f "$dir/fail"

ctl sender suspend acme
ctl sender resolve acme --release --note "second try"
is "resolve --release exits 0" "$rc" 0
like "resolve --release says how many" "$out" 'released 2 held messages'
is "the release command got -H and both ids" "$(cat "$dir/released")" "-H 4Q1ABC 4Q2DEF"
ctl sender show acme
like "no held ids left" "$out" 'held: +0 messages'
like "acmex's held mail is untouched" "$(timeout 60 "$BW_CTL" -c "$dir/bulkwarden.conf" sender show acmex)" 'held: +1 message'
like "history: suspend, resolve, suspend, resolve" "$out" \
	$'suspend +complaints from the spring batch\n.*resolve +sender cleaned its list\n.*suspend +\n.*resolve +second try'

ctl sender grace beta --note "bad batch reported by phone"
is "grace exits 0" "$rc" 0
like "grace: until two hours on" "$out" '^sender beta: grace; now grace until 20[0-9-]+T[0-9:.]+Z$'
ctl sender ack-incident beta
is "ack-incident without an incident: exit 0" "$rc" 0
is "ack-incident without an incident: says so" "$out" "sender beta: no open incident to acknowledge"
ctl sender resume beta
is "resume from grace" "$out" "sender beta: resume; now active"

ctl sender suspend "bad id"
is "a bad sender id: exit 2" "$rc" 2
ctl sender frobnicate acme
is "an unknown subcommand: exit 2" "$rc" 2
ctl sender suspend acme --release
is "--release only with resolve: exit 2" "$rc" 2

ctl rate show acme
is "rate show exits 0" "$rc" 0
like "rate show: MessageRate" "$out" 'message rate: +3600 per 3600s, burst 60 \(MessageRate\)'
like "rate show: no recipient rate" "$out" 'recipient rate: +no limit \(RecipientRate\)'
ctl rate show bigco
like "rate show: the sender class's" "$out" $'message rate: +100 per 60s, burst 100 \\(sender-class\\)\nrecipient rate: +5000 per 3600s, burst 5000 \\(sender-class\\)'
ctl sender grace gamma
ctl rate show gamma
like "rate show: cut for a sender in grace" "$out" 'cut to: +0.25 of those'
ctl rate reset acme --note "new warm-up plan"
is "rate reset exits 0" "$rc" 0
ctl rate show acme
like "rate show: when it was reset" "$out" 'last reset: +20[0-9-]+T'
like "the reset is in the history" "$(timeout 60 "$BW_CTL" -c "$dir/bulkwarden.conf" sender show acme)" 'rate-reset +new warm-up plan'

# complaints entered by hand: counted once per recipient, suppressed, listed
ctl complaint add delta "<Bob@Example.NET>" --source helpdesk
is "complaint add exits 0" "$rc" 0
like "complaint add: applied, an incident opened" "$out" \
	'^complaint: applied: sender=delta rcpt=Bob@example.net window=1/0 from 1 recipients state=active$'
ctl complaint add delta Bob@example.net
like "the same recipient again: a duplicate" "$out" 'duplicate: sender=delta rcpt=Bob@example.net'
ctl complaint list delta
like "complaint list: one, with its source" "$out" '^delta \{"at":"[^"]+","rcpt":"Bob@example.net","source":"helpdesk","type":"abuse"\}$'
ctl suppress show delta Bob@example.net
like "the recipient is suppressed as a complaint" "$out" '"reason": ?"complaint"'
ctl sender show delta
like "an incident is open" "$out" 'incident: +open since'
ctl complaint add "bad id" bob@example.net
is "complaint add with a bad sender id: exit 2" "$rc" 2
ctl complaint import "$dir/nonexistent.eml"
is "complaint import of a missing file: exit 1" "$rc" 1
like "complaint import says TrustedReporters is empty" "$err" 'TrustedReporters is empty'

# a damaged record is named, not shown as active
printf '{"table":"sender","key":"broken","value":{"state":"nonsense"}}\n' >"$dir/broken.jsonl"
timeout 60 "$BW_CTL" -c "$dir/bulkwarden.conf" restore "$dir/broken.jsonl" >/dev/null
ctl sender show broken
is "show of a damaged record: exit 1" "$rc" 1
like "it names the record" "$err" 'sender record "broken": .*state'
ctl sender suspend broken
is "suspend of a damaged record: exit 1, nothing overwritten" "$rc" 1

# a bad rate in the configuration: file:line
echo "RecipientRate lots" >>"$dir/bulkwarden.conf"
ctl check-config
is "check-config with a bad RecipientRate: exit 1" "$rc" 1
like "it names file, line and key" "$err" "bulkwarden.conf:7: RecipientRate: \"lots\" is not N/TIME"

tap_done
