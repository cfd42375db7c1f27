#!/bin/sh
# html_diff.sh - the HTML tokenizer against a spec-conformant parser.
#
# For every tests/data/html/*.html, the <a> links htmllinks reports (href and
# text, fed whole and in chunks of 1, 3 and 4096 bytes) must equal what
# html_oracle.py (html5lib) finds. TAP: one "ok N - file" line per document.
#
# Finds htmllinks in $top_builddir/tests/unit and the documents and the
# oracle in $top_srcdir; without them, relative to this script. Skips when
# no python3 with html5lib is at hand ($PYTHON, python3, /usr/bin/python3).

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${top_srcdir:-$here/../..}
builddir=${top_builddir:-$here/../..}
links=$builddir/tests/unit/htmllinks
oracle=$srcdir/tests/unit/html_oracle.py
docs=$srcdir/tests/data/html

python=
for p in "${PYTHON:-}" python3 /usr/bin/python3; do
	[ -n "$p" ] || continue
	if "$p" -c 'import html5lib' >/dev/null 2>&1; then
		python=$p
		break
	fi
done
if [ -z "$python" ]; then
	echo "1..0 # SKIP no python3 with html5lib"
	exit 0
fi
if [ ! -x "$links" ]; then
	echo "1..0 # SKIP $links not built"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/html_diff.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

set -- "$docs"/*.html
echo "1..$#"
n=0
failed=0
for f in "$@"; do
	n=$((n + 1))
	name=$(basename "$f")
	if ! "$python" "$oracle" "$f" >"$tmp/want" 2>"$tmp/err"; then
		echo "not ok $n - $name (oracle failed)"
		sed 's/^/# /' "$tmp/err"
		failed=1
		continue
	fi
	ok=1
	for c in 0 1 3 4096; do
		if ! "$links" -c "$c" "$f" >"$tmp/have" 2>"$tmp/err"; then
			echo "# $name: htmllinks -c $c failed"
			sed 's/^/# /' "$tmp/err"
			ok=0
			break
		fi
		if ! cmp -s "$tmp/want" "$tmp/have"; then
			echo "# $name: chunks of $c differ from html5lib (< html5lib, > htmllinks):"
			diff "$tmp/want" "$tmp/have" | sed 's/^/# /' | head -20
			ok=0
			break
		fi
	done
	if [ $ok = 1 ]; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failed=1
	fi
done
exit $failed
