#!/bin/sh
# corpus-eval.sh - measure "bulkwardenctl scan --bulk" against a labelled
# corpus of .eml files (manifest.tsv: file, expected_body_link,
# expected_list_unsubscribe, expected_one_click, category, language, notes).
#
# usage: tests/corpus-eval.sh [CORPUS_DIR]
#   CORPUS_DIR defaults to ../shared/corpus relative to the source top dir.
# Environment: BW_CTL (default: milter/bulkwardenctl in top_builddir, then
# the source dir, then PATH); top_builddir; BW_CHUNK=N feeds the body in
# pieces of N bytes (default: bulkwardenctl's); BW_KEEP=1 keeps the scratch
# dir.
#
# Prints per expected body label the confusion counts, the false refusals
# (expected visible, refused for the body link), the misses (hidden, absent
# or unrendered let through), the agreement of the List-Unsubscribe and
# one-click verdicts, and every file where a verdict disagrees. The corpus
# is read in place, never copied. Exit 0 when there is no false refusal and
# no miss, 1 otherwise, 2 on a usage or setup error.
set -u

srcdir=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$srcdir/../shared/corpus}
builddir=${top_builddir:-$srcdir}

if [ ! -f "$corpus/manifest.tsv" ]; then
	echo "corpus-eval: no manifest.tsv in $corpus" >&2
	exit 2
fi
corpus=$(cd "$corpus" && pwd)

ctl=${BW_CTL:-}
if [ -z "$ctl" ]; then
	for c in "$builddir/milter/bulkwardenctl" "$srcdir/milter/bulkwardenctl"; do
		[ -x "$c" ] && { ctl=$c; break; }
	done
fi
[ -z "$ctl" ] && ctl=$(command -v bulkwardenctl 2>/dev/null)
if [ -z "$ctl" ] || [ ! -x "$ctl" ]; then
	echo "corpus-eval: bulkwardenctl not found (build it, or set BW_CTL)" >&2
	exit 2
fi

tmp=$(mktemp -d -t corpus-eval.XXXXXX) || exit 2
cleanup() {
	[ "${BW_KEEP:-0}" = 1 ] && { echo "corpus-eval: kept $tmp" >&2; return; }
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# A config of its own: only the body link decides the verdict.
cat >"$tmp/bulkwarden.conf" <<EOF
Syslog no
Mode enforce
Store lmdb:$tmp/store
PhraseFile $srcdir/conf/unsubscribe-phrases
RequireBodyLink yes
RequireListUnsubscribe no
RequireOneClick no
EOF
mkdir -p "$tmp/store"

# the files of the manifest, with their absolute paths, in manifest order
awk -F '\t' -v dir="$corpus" 'NR > 1 && $1 != "" { print dir "/" $1 }' "$corpus/manifest.tsv" \
	>"$tmp/files"
if [ ! -s "$tmp/files" ]; then
	echo "corpus-eval: empty manifest" >&2
	exit 2
fi

# one JSON object per line per file; exit status 1 only means "some refused"
set -- scan --bulk --format json
[ -n "${BW_CHUNK:-}" ] && set -- "$@" --chunk "$BW_CHUNK"
tr '\n' '\0' <"$tmp/files" | xargs -0 "$ctl" -c "$tmp/bulkwarden.conf" "$@" \
	>"$tmp/scan.json" 2>"$tmp/scan.err"
if [ ! -s "$tmp/scan.json" ]; then
	echo "corpus-eval: bulkwardenctl produced nothing:" >&2
	cat "$tmp/scan.err" >&2
	exit 2
fi

# scan.json -> TSV: basename, verdict, rule, body_link, list_unsubscribe,
# one_click, first reason. The object is compact JSON written by the engine:
# the keys before "links" hold plain strings.
awk '
function get(key,    i, rest, j) {
	i = index($0, "\"" key "\":\"")
	if (i == 0)
		return "-"
	rest = substr($0, i + length(key) + 4)
	j = index(rest, "\"")
	return substr(rest, 1, j - 1)
}
function reason(    i, rest, j) {
	i = index($0, "\"reasons\":[\"")
	if (i == 0)
		return ""
	rest = substr($0, i + 12)
	j = index(rest, "\"")
	return substr(rest, 1, j - 1)
}
{
	f = get("file"); n = split(f, parts, "/"); f = parts[n]
	printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f, get("verdict"), get("rule"), get("body_link"),
	    get("list_unsubscribe"), get("one_click"), reason()
}' "$tmp/scan.json" >"$tmp/got.tsv"

awk -F '\t' '
FNR == NR { verdict[$1] = $2; rule[$1] = $3; body[$1] = $4; lu[$1] = $5; oc[$1] = $6; why[$1] = $7; next }
FNR == 1 { next }
$1 == "" { next }
{
	f = $1; eb = $2; elu = $3; eoc = $4; cat = $5; lang = $6
	total++
	if (!(f in body)) {
		missing++
		bad[++nbad] = sprintf("%s\tNOT SCANNED", f)
		next
	}
	gb = body[f]
	conf[eb, gb]++
	nexp[eb]++
	labels[eb] = 1; labels[gb] = 1
	if (eb == gb) agree++
	refused_body = (verdict[f] == "refuse" && rule[f] == "unsubscribe")
	if (eb == "visible" && refused_body) { fr++; frl[++nfr] = f }
	if (eb != "visible" && verdict[f] != "refuse") { miss++; ml[++nmiss] = f }
	if (elu == lu[f]) lu_ok++; else lu_bad++
	if (eoc == oc[f]) oc_ok++; else oc_bad++
	if (eb != gb || elu != lu[f] || eoc != oc[f])
		bad[++nbad] = sprintf("%s\t[%s %s] body %s->%s  list-unsubscribe %s->%s  one-click %s->%s  (%s)",
		    f, cat, lang, eb, gb, elu, lu[f], eoc, oc[f], why[f] == "" ? "-" : why[f])
}
END {
	n = split("visible hidden unrendered absent", order, " ")
	printf "messages: %d scanned of %d in the manifest\n\n", total - missing, total
	printf "body link: expected (rows) x got (columns)\n"
	printf "%-12s", ""
	for (j = 1; j <= n; j++) printf "%11s", order[j]
	printf "%11s\n", "agree"
	for (i = 1; i <= n; i++) {
		e = order[i]
		printf "%-12s", e
		for (j = 1; j <= n; j++) printf "%11d", conf[e, order[j]]
		printf "%7d/%-3d\n", conf[e, e], nexp[e]
	}
	printf "body link agreement: %d/%d\n\n", agree, total - missing
	printf "false refusals (visible refused for the body link): %d\n", fr
	for (i = 1; i <= nfr; i++) printf "  %s\n", frl[i]
	printf "misses (hidden/absent/unrendered let through): %d\n", miss
	for (i = 1; i <= nmiss; i++) printf "  %s\n", ml[i]
	printf "\nList-Unsubscribe agreement: %d/%d\n", lu_ok, lu_ok + lu_bad
	printf "one-click agreement:        %d/%d\n", oc_ok, oc_ok + oc_bad
	printf "\ndisagreements: %d\n", nbad
	for (i = 1; i <= nbad; i++) printf "  %s\n", bad[i]
	exit (fr + miss > 0) ? 1 : 0
}' "$tmp/got.tsv" "$corpus/manifest.tsv"
