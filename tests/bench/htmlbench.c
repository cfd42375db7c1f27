/*
 * htmlbench.c - HTML tokenizer throughput, against libxml2's HTML SAX parser.
 *
 *   htmlbench [-a] [-s SECONDS] [-r ROUNDS] [-c CHUNK] FILE...
 *
 * For each file, feeds the same bytes again and again to html_feed() +
 * html_finish() and to libxml2's push parser (htmlCreatePushParserCtxt /
 * htmlParseChunk) with three handlers, in the same run:
 *
 *   sax    only startElement, counting: the least work libxml2 can be asked
 *          for, the baseline the ratio is taken against;
 *   text   startElement, endElement and characters, counting: the events a
 *          link finder needs at the least (ours finds links and their text);
 *   tree   libxml2's default SAX2 handler, which builds the document tree
 *          (what htmlReadMemory does).
 *
 * ROUNDS (default 5) alternating rounds of about SECONDS (default 0.2) per
 * side, timed in CPU time, the best round of each side kept, so that a busy
 * machine disturbs the ratio less. Prints the throughputs in MB/s and the
 * ratios of ours to sax and to tree, then the totals. Creating and
 * freeing the parsers is not timed (both sides alike) unless -a: then the
 * whole cost of a message is. CHUNK: feed in pieces of that many bytes
 * (default: the whole file at once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include "html.h"

static int whole_cost;   /* -a: time parser creation and teardown too */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
count_link(void *ud, const html_link *l)
{
	(void)l;
	(*(unsigned long *)ud)++;
}

static void
count_start(void *ud, const xmlChar *name, const xmlChar **attrs)
{
	(void)name;
	(void)attrs;
	(*(unsigned long *)ud)++;
}

static unsigned long text_bytes, end_tags;  /* what the text handler sees */

static void
count_end(void *ud, const xmlChar *name)
{
	(void)ud;
	(void)name;
	end_tags++;
}

static void
count_text(void *ud, const xmlChar *ch, int len)
{
	(void)ud;
	(void)ch;
	text_bytes += (unsigned long)len;
}

enum { X_SAX, X_TEXT, X_TREE, X_N };

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 65536, n = 0;
	char *buf;

	if (fp == NULL)
		return NULL;
	if ((buf = malloc(cap)) == NULL) {
		fclose(fp);
		return NULL;
	}
	for (;;) {
		n += fread(buf + n, 1, cap - n, fp);
		if (n < cap)
			break;
		char *nb = realloc(buf, cap *= 2);
		if (nb == NULL) {
			free(buf);
			fclose(fp);
			return NULL;
		}
		buf = nb;
	}
	fclose(fp);
	*len = n;
	return buf;
}

/* seconds spent in html_feed+html_finish for iters runs */
static double
run_ours(const char *buf, size_t len, size_t chunk, unsigned long iters, unsigned long *links)
{
	html_limits lim = { .max_depth = 256, .max_links = 10000, .max_url = 8192, .min_font_px = 5 };
	html_cb cb = { .link = count_link };
	double spent = 0;

	for (unsigned long i = 0; i < iters; i++) {
		double t0 = now();
		html_parser *h = html_new(&lim, &cb, links);
		if (h == NULL) {
			fprintf(stderr, "htmlbench: out of memory\n");
			exit(1);
		}
		if (!whole_cost)
			t0 = now();
		for (size_t off = 0; off < len; off += chunk)
			html_feed(h, buf + off, len - off < chunk ? len - off : chunk);
		html_finish(h);
		if (!whole_cost)
			spent += now() - t0;
		html_free(h);
		if (whole_cost)
			spent += now() - t0;
	}
	return spent;
}

static double
run_libxml2(int mode, const char *buf, size_t len, size_t chunk, unsigned long iters,
    unsigned long *elems)
{
	htmlSAXHandler sax;
	double spent = 0;

	memset(&sax, 0, sizeof(sax));
	sax.startElement = count_start;
	if (mode == X_TEXT) {
		sax.endElement = count_end;
		sax.characters = count_text;
	}
	for (unsigned long i = 0; i < iters; i++) {
		double t0 = now();
		htmlParserCtxtPtr ctxt = htmlCreatePushParserCtxt(mode == X_TREE ? NULL : &sax, elems,
		    NULL, 0, NULL, XML_CHAR_ENCODING_UTF8);
		if (ctxt == NULL) {
			fprintf(stderr, "htmlbench: libxml2 context failed\n");
			exit(1);
		}
		htmlCtxtUseOptions(ctxt, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
		if (!whole_cost)
			t0 = now();
		for (size_t off = 0; off < len; off += chunk)
			htmlParseChunk(ctxt, buf + off, (int)(len - off < chunk ? len - off : chunk), 0);
		htmlParseChunk(ctxt, NULL, 0, 1);
		if (!whole_cost)
			spent += now() - t0;
		if (mode == X_TREE) {
			if (ctxt->myDoc == NULL) {
				fprintf(stderr, "htmlbench: libxml2 built no tree\n");
				exit(1);
			}
			(*elems)++;
			xmlFreeDoc(ctxt->myDoc);
			ctxt->myDoc = NULL;
		}
		htmlFreeParserCtxt(ctxt);
		if (whole_cost)
			spent += now() - t0;
	}
	return spent;
}

/* runs needed for about secs of work, from a short trial */
static unsigned long
calibrate(double per_run, double secs)
{
	double n = per_run > 0 ? secs / per_run : 1000;

	return n < 3 ? 3 : n > 1e7 ? 10000000 : (unsigned long)n;
}

int
main(int argc, char **argv)
{
	static const char *const mname[X_N] = { "sax", "text", "tree" };
	double secs = 0.2, tot_ours = 0, bytes_ours = 0, tot_x[X_N] = { 0 }, bytes_x[X_N] = { 0 };
	size_t chunk = 0;
	int c, rounds = 5;

	while ((c = getopt(argc, argv, "as:r:c:")) != -1) {
		switch (c) {
		case 'a':
			whole_cost = 1;
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 'r':
			rounds = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		case 'c':
			chunk = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: htmlbench [-a] [-s SECONDS] [-r ROUNDS] [-c CHUNK] FILE...\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: htmlbench [-a] [-s SECONDS] [-r ROUNDS] [-c CHUNK] FILE...\n");
		return 2;
	}
	xmlInitParser();
	printf("%-28s %6s %9s %9s %9s %9s %7s %7s %5s %5s\n", "file", "bytes", "ours MB/s",
	    "sax MB/s", "text MB/s", "tree MB/s", "vs sax", "vs tree", "links", "elems");
	for (int i = optind; i < argc; i++) {
		size_t len;
		char *buf = slurp(argv[i], &len);
		unsigned long links = 0, elems = 0, n[X_N];
		double t1 = 0, tx[X_N] = { 0 }, mbx[X_N];

		if (buf == NULL || len == 0) {
			fprintf(stderr, "htmlbench: %s: %s\n", argv[i], buf ? "empty" : strerror(errno));
			free(buf);
			continue;
		}
		size_t ch = chunk ? chunk : len;
		unsigned long n1 = calibrate(run_ours(buf, len, ch, 3, &links) / 3, secs);
		for (int m = 0; m < X_N; m++)
			n[m] = calibrate(run_libxml2(m, buf, len, ch, 3, &elems) / 3, secs);
		for (int r = 0; r < rounds; r++) {
			double a;
			links = elems = 0;
			a = run_ours(buf, len, ch, n1, &links);
			t1 = r == 0 || a < t1 ? a : t1;
			for (int m = 0; m < X_N; m++) {
				unsigned long e = 0;
				double b = run_libxml2(m, buf, len, ch, n[m], &e);
				tx[m] = r == 0 || b < tx[m] ? b : tx[m];
				if (m == X_SAX)
					elems = e;
			}
		}
		double mb1 = (double)len * (double)n1 / t1 / 1e6;
		for (int m = 0; m < X_N; m++) {
			mbx[m] = (double)len * (double)n[m] / tx[m] / 1e6;
			tot_x[m] += tx[m];
			bytes_x[m] += (double)len * (double)n[m];
		}
		const char *base = strrchr(argv[i], '/');
		base = base ? base + 1 : argv[i];
		printf("%-28.28s %6zu %9.1f %9.1f %9.1f %9.1f %6.1fx %6.1fx %5lu %5lu\n", base, len, mb1,
		    mbx[X_SAX], mbx[X_TEXT], mbx[X_TREE], mb1 / mbx[X_SAX], mb1 / mbx[X_TREE],
		    links / n1, elems / n[X_SAX]);
		tot_ours += t1;
		bytes_ours += (double)len * (double)n1;
		free(buf);
	}
	if (tot_ours > 0 && tot_x[X_SAX] > 0) {
		double mb1 = bytes_ours / tot_ours / 1e6, mbx[X_N];
		for (int m = 0; m < X_N; m++)
			mbx[m] = bytes_x[m] / tot_x[m] / 1e6;
		printf("%-28s %6s %9.1f %9.1f %9.1f %9.1f %6.1fx %6.1fx\n", "total", "", mb1,
		    mbx[X_SAX], mbx[X_TEXT], mbx[X_TREE], mb1 / mbx[X_SAX], mb1 / mbx[X_TREE]);
		printf("htmlbench: ours %.1f MB/s; libxml2 %s %.1f, %s %.1f, %s %.1f MB/s\n", mb1,
		    mname[X_SAX], mbx[X_SAX], mname[X_TEXT], mbx[X_TEXT], mname[X_TREE], mbx[X_TREE]);
	}
	xmlCleanupParser();
	return 0;
}
