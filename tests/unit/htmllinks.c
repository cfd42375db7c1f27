/*
 * htmllinks.c - print the links the HTML tokenizer finds in a file.
 *
 *   htmllinks [-c N] [-v] FILE
 *
 * Feeds FILE to html_feed() in chunks of N bytes (default: all at once) and
 * prints one JSON line per <a> element, {"href": ..., "text": ...}, in the
 * format of Python's json.dumps, for comparison with html_oracle.py (links
 * inside comments are not elements, so they are left out). With -v, every
 * link the tokenizer reports, with all its facts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "html.h"

static bool verbose;

static void
json_str(const char *s)
{
	if (s == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': fputs("\\\"", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		case '\b': fputs("\\b", stdout); break;
		case '\f': fputs("\\f", stdout); break;
		default:
			if (c < 0x20)
				printf("\\u%04x", c);
			else
				putchar(c);
		}
	}
	putchar('"');
}

static void
on_link(void *ud, const html_link *l)
{
	(void)ud;
	if (!verbose) {
		if (strcmp(l->tag, "a") != 0 || (l->why && strcmp(l->why, "inside comment") == 0))
			return;
		fputs("{\"href\": ", stdout);
		json_str(l->href);
		fputs(", \"text\": ", stdout);
		json_str(l->text);
		fputs("}\n", stdout);
		return;
	}
	fputs("{\"tag\": ", stdout);
	json_str(l->tag);
	fputs(", \"href\": ", stdout);
	json_str(l->href);
	fputs(", \"text\": ", stdout);
	json_str(l->text);
	fputs(", \"visible_text\": ", stdout);
	json_str(l->visible_text);
	fputs(", \"alt\": ", stdout);
	json_str(l->alt);
	fputs(", \"visible\": ", stdout);
	fputs(l->visible ? "true" : "false", stdout);
	fputs(", \"why\": ", stdout);
	json_str(l->why);
	fputs(", \"before\": ", stdout);
	json_str(l->before);
	fputs(", \"after\": ", stdout);
	json_str(l->after);
	if (l->href_truncated)
		fputs(", \"href_truncated\": true", stdout);
	fputs("}\n", stdout);
}

int
main(int argc, char **argv)
{
	size_t chunk = 0, len = 0, cap = 65536;
	char *buf;
	FILE *fp;
	int c;

	while ((c = getopt(argc, argv, "c:v")) != -1) {
		switch (c) {
		case 'c':
			chunk = strtoul(optarg, NULL, 10);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			fprintf(stderr, "usage: htmllinks [-c N] [-v] FILE\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: htmllinks [-c N] [-v] FILE\n");
		return 2;
	}
	if ((fp = fopen(argv[optind], "rb")) == NULL) {
		fprintf(stderr, "htmllinks: %s: %s\n", argv[optind], strerror(errno));
		return 2;
	}
	if ((buf = malloc(cap)) == NULL)
		return 2;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len < cap)
			break;
		char *nb = realloc(buf, cap *= 2);
		if (nb == NULL)
			return 2;
		buf = nb;
	}
	fclose(fp);

	html_limits lim = { .max_depth = 256, .max_links = 10000, .max_url = 8192, .min_font_px = 5 };
	html_cb cb = { .link = on_link };
	html_parser *h = html_new(&lim, &cb, NULL);
	if (h == NULL) {
		fprintf(stderr, "htmllinks: out of memory\n");
		return 2;
	}
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk)
		html_feed(h, buf + off, len - off < chunk ? len - off : chunk);
	html_finish(h);
	if (verbose && html_limit_hit(h))
		printf("{\"limit\": \"%s\"}\n", html_limit_hit(h));
	html_free(h);
	free(buf);
	return 0;
}
