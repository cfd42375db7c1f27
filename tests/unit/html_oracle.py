#!/usr/bin/env python3
"""html_oracle.py - the test oracle for the HTML tokenizer.

    html_oracle.py FILE

Parses FILE (UTF-8) with html5lib, a spec-conformant HTML parser, and
prints one JSON line per HTML <a> element, in document order, in the
format htmllinks prints:

    {"href": <href attribute, or null>, "text": <text content>}

The href is trimmed of ASCII space and controls, with tabs and newlines
removed (as URL parsing does). The text is the element's text content,
without the content of script, style, title, iframe, noembed and
noframes (text nobody sees), with a space where a block element or a
<br> starts or ends, then with white space collapsed and zero-width
characters and controls dropped: the same normalisation as html.c.
"""
import json
import re
import sys

import html5lib

# elements whose start and end separate blocks of text (TF_BLOCK in html.c)
BLOCK = set("""address article aside blockquote body br caption center dd details
dialog dir div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6
head header hgroup hr html li listing main menu nav ol p plaintext pre search
section summary table tbody td tfoot th thead tr ul xmp""".split())
UNSEEN = {"script", "style", "title", "iframe", "noembed", "noframes"}

WS = re.compile("[ \t\n\r\f\u00a0\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
DROP = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
HREF_TRIM = "".join(chr(i) for i in range(0x21))


def text_of(el):
    """The text content of el, spaced at blocks, unseen elements left out."""
    out = []
    stack = [(el, False)]                       # (node or text, leaving)
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, str):
            out.append(node)
            continue
        if not isinstance(node.tag, str):       # a comment
            continue
        if node is not el and node.tag in BLOCK:
            out.append(" ")
        if leaving:
            continue
        stack.append((node, True))
        if node.tag in UNSEEN:
            continue
        items = [node.text] if node.text else []
        for child in node:
            items.append(child)
            if child.tail:
                items.append(child.tail)
        stack.extend((item, False) for item in reversed(items))
    return "".join(out)


def normalise(s):
    return WS.sub(" ", DROP.sub("", s)).strip(" ")


def walk(root):
    """The HTML <a> elements, in document order."""
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node.tag, str):
            continue
        if node.tag == "a":
            yield node
        stack.extend(reversed(list(node)))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: html_oracle.py FILE\n")
        return 2
    with open(sys.argv[1], "rb") as f:
        data = f.read().decode("utf-8", errors="replace")
    doc = html5lib.parse(data, treebuilder="etree", namespaceHTMLElements=False)
    for a in walk(doc):
        href = a.get("href")
        if href is not None:
            href = re.sub("[\t\n\r]", "", href.strip(HREF_TRIM))
        text = normalise(text_of(a))
        print(json.dumps({"href": href, "text": text}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
