/*
 * bwbench.c - milter load driver: plays the MTA side of the Sendmail 8
 * milter protocol (version 6) against one filter over many connections and
 * reports messages per second, latency percentiles and the replies.
 *
 * It speaks the wire protocol itself (no libmilter) and behaves the way
 * Postfix's milter8 client does: it offers every action and protocol flag,
 * honours what the filter asks for (skipped steps, no-reply steps, SKIP in
 * the body, macro lists), sends the Postfix default macros, buffers
 * commands that need no reply and sends them with the next one that does,
 * cuts the body (CRLF line ends) into chunks of at most MILTER_CHUNK_SIZE.
 * One thread per connection; each connection sends its messages in turn.
 * A message's latency runs from its MAIL to the filter's final reply.
 *
 * The last line printed is stable and meant for scripts:
 *   bwbench: msgs=8000 secs=2.10 rate=3809.5/s p50=1.9ms p99=4.2ms accept=8000 ...
 * Exit status: 0 when every connection ran to the end, 1 on a protocol or
 * connection error (what went wrong is printed), 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <libmilter/mfdef.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Action flags (libmilter/mfapi.h; the wire values are fixed). */
#define BB_F_ADDHDRS    0x001UL
#define BB_F_CHGBODY    0x002UL
#define BB_F_ADDRCPT    0x004UL
#define BB_F_DELRCPT    0x008UL
#define BB_F_CHGHDRS    0x010UL
#define BB_F_QUARANTINE 0x020UL
#define BB_F_CHGFROM    0x040UL
#define BB_F_ADDRCPTPAR 0x080UL
#define BB_F_SETSYMLIST 0x100UL

/* Limits. */
#define BB_MAX_CONNS     1024
#define BB_MAX_RCPTS     10000
#define BB_MAX_REPLY     (1024 * 1024)   /* largest filter packet accepted */
#define BB_MAX_HEADERS   10000
#define BB_MAX_FILE      (64 * 1024 * 1024)
#define BB_FLUSH_AT      (64 * 1024)     /* flush buffered commands beyond this */
#define BB_NSTAGES       7               /* SMFIM_CONNECT .. SMFIM_EOH */
#define BB_MAX_MACROS    8               /* macros per stage */

/* Macro stages (libmilter/mfapi.h SMFIM_*). */
enum { BB_M_CONNECT, BB_M_HELO, BB_M_ENVFROM, BB_M_ENVRCPT, BB_M_DATA, BB_M_EOM, BB_M_EOH };

/* What the filter decided for a message. */
typedef enum { BB_ACCEPT, BB_REJECT, BB_TEMPFAIL, BB_DISCARD, BB_NKINDS } bb_kind;
static const char *const bb_kind_name[BB_NKINDS] = { "accept", "reject", "tempfail", "discard" };

/*
 * Edits a filter may send at end of message, before its final reply: the
 * action it must have negotiated and the shape of the data.
 */
typedef enum { BB_E_BUF, BB_E_STR, BB_E_STR2, BB_E_HDR, BB_E_IDXHDR } bb_eshape;
static const struct bb_edit {
	unsigned char cmd;
	unsigned long action;
	bb_eshape shape;
	const char *name;
} bb_edits[] = {
	{ SMFIR_ADDHEADER, BB_F_ADDHDRS, BB_E_HDR, "add header" },
	{ SMFIR_INSHEADER, BB_F_ADDHDRS, BB_E_IDXHDR, "insert header" },
	{ SMFIR_CHGHEADER, BB_F_CHGHDRS, BB_E_IDXHDR, "change header" },
	{ SMFIR_DELRCPT, BB_F_DELRCPT, BB_E_STR, "delete rcpt" },
	{ SMFIR_ADDRCPT, BB_F_ADDRCPT, BB_E_STR, "add rcpt" },
	{ SMFIR_ADDRCPT_PAR, BB_F_ADDRCPTPAR, BB_E_STR2, "add rcpt+args" },
	{ SMFIR_CHGFROM, BB_F_CHGFROM, BB_E_STR2, "change from" },
	{ SMFIR_REPLBODY, BB_F_CHGBODY, BB_E_BUF, "replace body" },
	{ SMFIR_QUARANTINE, BB_F_QUARANTINE, BB_E_STR, "quarantine" },
};
#define BB_NEDITS (sizeof(bb_edits) / sizeof(bb_edits[0]))
#define BB_EDIT_ADDHDR 0
#define BB_EDIT_DELRCPT 3
#define BB_EDIT_QUARANTINE 8

/* One reply that ends an event. */
typedef enum { BB_R_CONTINUE, BB_R_ACCEPT, BB_R_REJECT, BB_R_TEMPFAIL, BB_R_DISCARD,
	BB_R_SKIP, BB_R_SHUTDOWN } bb_rtype;

typedef struct bb_opts {
	const char *sock;
	const char *file;
	const char *auth;
	const char *from;       /* envelope sender, without brackets */
	const char *client;     /* client address in CONNECT */
	int conns;
	long msgs;              /* per connection */
	int rcpts;
	size_t chunk;
	int timeout;            /* seconds per reply */
	int wait;               /* seconds to retry the first connect */
	bool quiet;
	bool verbose;
} bb_opts;

typedef struct bb_header {
	char *name;
	char *value;            /* after the colon, as in the file; folds joined by "\n" */
} bb_header;

typedef struct bb_message {
	bb_header *hdrs;
	size_t nhdrs;
	char *body;             /* CRLF line ends */
	size_t bodylen;
	size_t size;            /* bytes as sent over SMTP, for SIZE= */
	char from[256];
} bb_message;

typedef struct bb_buf {
	unsigned char *p;
	size_t len;
	size_t off;             /* read position (input buffer) */
	size_t cap;
} bb_buf;

typedef struct bb_stats {
	long kind[BB_NKINDS];
	long sent;              /* messages that reached the filter */
	long session;           /* messages decided for the whole connection */
	long replycode;         /* final replies given as a full SMTP reply */
	long skip;              /* messages whose body the filter skipped */
	long rcptrej;           /* recipients refused at RCPT */
	long edit[BB_NEDITS];    /* edits at end of message, by bb_edits[] */
	long reconnects;
	double *lat;            /* ms, one per message sent */
	size_t nlat;
	char first_text[BB_NKINDS][512];  /* first reply text seen per kind */
} bb_stats;

typedef struct bb_conn {
	int id;
	int fd;
	const bb_opts *o;
	const bb_message *msg;
	uint32_t version;
	uint32_t actions;
	uint32_t pflags;
	bool have_symlist;                 /* the filter sent macro lists */
	char *symlist[BB_NSTAGES];
	bb_buf out;
	bb_buf in;
	bool dead;                         /* the filter ended the session */
	int session;                       /* -1, or the bb_kind of a session decision */
	char text[512];                    /* text of the last reply code */
	bb_stats st;
	char err[512];
	pthread_t tid;
} bb_conn;

static atomic_int bb_stop;
static pthread_barrier_t bb_start;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bwbench -s unix:/path|inet:port@host -f message.eml [-c connections]\n"
	    "               [-m messages-per-connection] [-r recipients] [-a auth-login]\n"
	    "               [-F envelope-sender] [-i client-address] [-k chunk-bytes]\n"
	    "               [-t reply-timeout-s] [-w connect-wait-s] [-q] [-v]\n");
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int conn_fail(bb_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
conn_fail(bb_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0] == 0) {
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	atomic_store(&bb_stop, 1);
	return -1;
}

/* ------------------------------------------------------------ the message */

static char *
file_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (fp == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *np;

			if (cap >= BB_MAX_FILE) {
				errno = EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 65536;
			if ((np = realloc(p, cap + 1)) == NULL)
				break;
			p = np;
		}
		r = fread(p + n, 1, cap - n, fp);
		n += r;
		if (r == 0) {
			if (ferror(fp))
				break;
			fclose(fp);
			p[n] = 0;
			*len = n;
			return p;
		}
	}
	fclose(fp);
	free(p);
	return NULL;
}

/* The address in "Name <addr>" or "addr"; empty when there is none. */
static void
addr_of(const char *v, char *out, size_t outlen)
{
	const char *lt = strchr(v, '<'), *gt;
	size_t n;

	out[0] = 0;
	if (lt && (gt = strchr(lt, '>')) != NULL) {
		n = (size_t)(gt - lt - 1);
		if (n < outlen && n > 0) {
			memcpy(out, lt + 1, n);
			out[n] = 0;
		}
		return;
	}
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, " \t\r\n");
	if (n < outlen && memchr(v, '@', n)) {
		memcpy(out, v, n);
		out[n] = 0;
	}
}

/*
 * Split a message file into headers and a CRLF body. Lines may end in LF or
 * CRLF. A folded header keeps its line breaks as "\n", as the MTAs send them.
 */
static int
message_load(const char *path, bb_message *m, char *err, size_t errlen)
{
	size_t len, i, lineno = 0, cap = 0;
	char *data = file_read(path, &len), *p, *end;
	bool in_headers = true;

	memset(m, 0, sizeof(*m));
	if (data == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	p = data;
	end = data + len;
	while (in_headers && p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p)), *next, *colon;
		size_t ll;

		lineno++;
		next = eol ? eol + 1 : end;
		ll = (size_t)((eol ? eol : end) - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			in_headers = false;
			p = next;
			break;
		}
		if (p[0] == ' ' || p[0] == '\t') {
			bb_header *h;
			size_t ol;

			if (m->nhdrs == 0) {
				snprintf(err, errlen, "%s:%zu: continuation line before any header", path, lineno);
				goto fail;
			}
			h = &m->hdrs[m->nhdrs - 1];
			ol = strlen(h->value);
			if ((h->value = realloc(h->value, ol + 1 + ll + 1)) == NULL)
				goto oom;
			h->value[ol] = '\n';
			memcpy(h->value + ol + 1, p, ll);
			h->value[ol + 1 + ll] = 0;
		} else {
			bb_header *h;
			size_t nl;

			if ((colon = memchr(p, ':', ll)) == NULL || colon == p) {
				snprintf(err, errlen, "%s:%zu: not a header line (no name and colon)", path, lineno);
				goto fail;
			}
			if (m->nhdrs >= BB_MAX_HEADERS) {
				snprintf(err, errlen, "%s: more than %d headers", path, BB_MAX_HEADERS);
				goto fail;
			}
			if (m->nhdrs == cap) {
				bb_header *nh;

				cap = cap ? cap * 2 : 32;
				if ((nh = realloc(m->hdrs, cap * sizeof(*nh))) == NULL)
					goto oom;
				m->hdrs = nh;
			}
			h = &m->hdrs[m->nhdrs];
			for (nl = (size_t)(colon - p); nl > 0 && (p[nl - 1] == ' ' || p[nl - 1] == '\t'); nl--)
				;
			h->name = strndup(p, nl);
			h->value = strndup(colon + 1, ll - (size_t)(colon + 1 - p));
			if (h->name == NULL || h->value == NULL)
				goto oom;
			m->nhdrs++;
		}
		p = next;
	}
	/* body: every bare LF becomes CRLF; a last line without LF gets one */
	len = (size_t)(end - p);
	if ((m->body = malloc(2 * len + 3)) == NULL)
		goto oom;
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			m->body[m->bodylen++] = '\r';
		m->body[m->bodylen++] = p[i];
	}
	if (m->bodylen > 0 && m->body[m->bodylen - 1] != '\n') {
		m->body[m->bodylen++] = '\r';
		m->body[m->bodylen++] = '\n';
	}
	m->size = m->bodylen + 2;
	for (i = 0; i < m->nhdrs; i++) {
		m->size += strlen(m->hdrs[i].name) + 1 + strlen(m->hdrs[i].value) + 2;
		if (m->from[0] == 0 && strcasecmp(m->hdrs[i].name, "From") == 0)
			addr_of(m->hdrs[i].value, m->from, sizeof(m->from));
	}
	free(data);
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	free(data);
	return -1;
}

static void
message_free(bb_message *m)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	free(m->body);
}

/* ------------------------------------------------------------ the wire */

static int
buf_reserve(bb_conn *c, bb_buf *b, size_t more)
{
	unsigned char *np;
	size_t cap;

	if (b->len + more <= b->cap)
		return 0;
	for (cap = b->cap ? b->cap : 4096; cap < b->len + more; cap *= 2)
		;
	if ((np = realloc(b->p, cap)) == NULL)
		return conn_fail(c, "out of memory");
	b->p = np;
	b->cap = cap;
	return 0;
}

static int
put(bb_conn *c, const void *data, size_t len)
{
	if (buf_reserve(c, &c->out, len) < 0)
		return -1;
	memcpy(c->out.p + c->out.len, data, len);
	c->out.len += len;
	return 0;
}

static int
put_str(bb_conn *c, const char *s)
{
	return put(c, s, strlen(s) + 1);
}

static int
put_u32(bb_conn *c, uint32_t v)
{
	v = htonl(v);
	return put(c, &v, 4);
}

/* Open a packet: returns the offset to give to pkt_end(). */
static long
pkt_begin(bb_conn *c, char cmd)
{
	size_t at = c->out.len;
	static const unsigned char zero[4];

	if (put(c, zero, 4) < 0 || put(c, &cmd, 1) < 0)
		return -1;
	return (long)at;
}

static int flush(bb_conn *c);

static int
pkt_end(bb_conn *c, long at)
{
	uint32_t n;

	if (at < 0)
		return -1;
	n = htonl((uint32_t)(c->out.len - (size_t)at - 4));
	memcpy(c->out.p + at, &n, 4);
	if (c->out.len >= BB_FLUSH_AT)
		return flush(c);
	return 0;
}

static int
flush(bb_conn *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->out.len) {
		n = write(c->fd, c->out.p + done, c->out.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_fail(c, "write: filter did not read for %d s", c->o->timeout);
		if (n < 0)
			return conn_fail(c, "write: %s", strerror(errno));
		done += (size_t)n;
	}
	c->out.len = 0;
	return 0;
}

static const char *
cmd_name(int cmd)
{
	switch (cmd) {
	case SMFIC_OPTNEG: return "OPTNEG";
	case SMFIC_CONNECT: return "CONNECT";
	case SMFIC_HELO: return "HELO";
	case SMFIC_MAIL: return "MAIL";
	case SMFIC_RCPT: return "RCPT";
	case SMFIC_DATA: return "DATA";
	case SMFIC_HEADER: return "HEADER";
	case SMFIC_EOH: return "EOH";
	case SMFIC_BODY: return "BODY";
	case SMFIC_BODYEOB: return "end of message";
	default: return "?";
	}
}

/* Read one packet from the filter; *data points into the input buffer. */
static int
pkt_read(bb_conn *c, int event, unsigned char *cmd, const unsigned char **data, size_t *len)
{
	bb_buf *b = &c->in;
	uint32_t n;
	size_t need = 4;
	bool have_len = false;

	if (flush(c) < 0)
		return -1;
	for (;;) {
		size_t avail = b->len - b->off;
		ssize_t r;

		if (!have_len && avail >= 4) {
			memcpy(&n, b->p + b->off, 4);
			n = ntohl(n);
			if (n < 1 || n > BB_MAX_REPLY)
				return conn_fail(c, "bad reply length %lu after %s", (unsigned long)n, cmd_name(event));
			need = 4 + (size_t)n;
			have_len = true;
		}
		if (have_len && avail >= need)
			break;
		if (b->off > 0) {
			/* keep the unread part at the front */
			memmove(b->p, b->p + b->off, avail);
			b->len = avail;
			b->off = 0;
		}
		if (buf_reserve(c, b, need > 65536 ? need : 65536) < 0)
			return -1;
		r = read(c->fd, b->p + b->len, b->cap - b->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_fail(c, "no reply to %s within %d s", cmd_name(event), c->o->timeout);
		if (r < 0)
			return conn_fail(c, "read after %s: %s", cmd_name(event), strerror(errno));
		if (r == 0)
			return conn_fail(c, "filter closed the connection after %s", cmd_name(event));
		b->len += (size_t)r;
	}
	*cmd = b->p[b->off + 4];
	*data = b->p + b->off + 5;
	*len = need - 5;
	b->off += need;
	return 0;
}

/* The n-th NUL-terminated string in data[0..len), or NULL. */
static const char *
data_str(const unsigned char *data, size_t len, size_t *pos)
{
	const unsigned char *z;
	const char *s;

	if (*pos >= len || (z = memchr(data + *pos, 0, len - *pos)) == NULL)
		return NULL;
	s = (const char *)data + *pos;
	*pos = (size_t)(z - data) + 1;
	return s;
}

/* Check one edit at end of message against the negotiation; count it. */
static int
edit_check(bb_conn *c, unsigned char cmd, const unsigned char *d, size_t len)
{
	const struct bb_edit *e;
	const char *s1, *s2 = NULL;
	size_t pos = 0, i;

	for (i = 0; i < BB_NEDITS && bb_edits[i].cmd != cmd; i++)
		;
	if (i == BB_NEDITS)
		return conn_fail(c, "unknown reply '%c' (0x%02x) at end of message",
		    cmd >= 32 && cmd < 127 ? cmd : '?', cmd);
	e = &bb_edits[i];
	if ((c->actions & e->action) == 0)
		return conn_fail(c, "filter sent %s ('%c') without negotiating action 0x%lx", e->name, cmd,
		    e->action);
	c->st.edit[i]++;
	if (e->shape == BB_E_BUF)
		return 0;
	if (e->shape == BB_E_IDXHDR) {
		if (len < 4)
			return conn_fail(c, "%s ('%c') too short", e->name, cmd);
		pos = 4;
	}
	s1 = data_str(d, len, &pos);
	if (e->shape == BB_E_HDR || e->shape == BB_E_IDXHDR || (e->shape == BB_E_STR2 && pos < len))
		s2 = data_str(d, len, &pos);
	if (s1 == NULL || pos != len || (s2 == NULL && (e->shape == BB_E_HDR || e->shape == BB_E_IDXHDR))
	    || (*s1 == 0 && cmd != SMFIR_QUARANTINE))
		return conn_fail(c, "malformed %s ('%c') at end of message", e->name, cmd);
	if (c->o->verbose)
		fprintf(stderr, "bwbench: conn %d: %s: %s%s%s\n", c->id, e->name, s1, s2 ? " " : "",
		    s2 ? s2 : "");
	return 0;
}

/*
 * Read replies to one event until the one that ends it. Body edits and the
 * like may only come before the final reply at end of message.
 */
static int
wait_reply(bb_conn *c, int event, bb_rtype *rt)
{
	for (;;) {
		unsigned char cmd;
		const unsigned char *d;
		size_t len;

		if (pkt_read(c, event, &cmd, &d, &len) < 0)
			return -1;
		switch (cmd) {
		case SMFIR_PROGRESS:
			continue;
		case SMFIR_CONTINUE: *rt = BB_R_CONTINUE; break;
		case SMFIR_ACCEPT: *rt = BB_R_ACCEPT; break;
		case SMFIR_REJECT: *rt = BB_R_REJECT; break;
		case SMFIR_TEMPFAIL: *rt = BB_R_TEMPFAIL; break;
		case SMFIR_DISCARD: *rt = BB_R_DISCARD; break;
		case SMFIR_SKIP: *rt = BB_R_SKIP; break;
		case SMFIR_SHUTDOWN:
		case SMFIR_CONN_FAIL: *rt = BB_R_SHUTDOWN; break;
		case SMFIR_REPLYCODE:
			if (len < 1 || d[len - 1] != 0 || memchr(d, 0, len) != d + len - 1)
				return conn_fail(c, "reply code after %s is not one string", cmd_name(event));
			if ((d[0] != '4' && d[0] != '5') || d[1] < '0' || d[1] > '9' || d[2] < '0'
			    || d[2] > '9' || (d[3] != ' ' && d[3] != '-') || d[4] != d[0])
				return conn_fail(c, "malformed reply code after %s: \"%.200s\"", cmd_name(event),
				    (const char *)d);
			snprintf(c->text, sizeof(c->text), "%s", (const char *)d);
			*rt = d[0] == '5' ? BB_R_REJECT : BB_R_TEMPFAIL;
			c->st.replycode++;
			return 1;       /* 1: the reply carried text */
		default:
			if (event != SMFIC_BODYEOB)
				return conn_fail(c, "unexpected reply '%c' (0x%02x) after %s",
				    cmd >= 32 && cmd < 127 ? cmd : '?', cmd, cmd_name(event));
			if (edit_check(c, cmd, d, len) < 0)
				return -1;
			continue;
		}
		if (len != 0)
			return conn_fail(c, "reply '%c' after %s carries %zu unexpected bytes", cmd,
			    cmd_name(event), len);
		return 0;
	}
}

/* ------------------------------------------------------------ macros */

typedef struct bb_macro {
	const char *name;
	const char *value;
} bb_macro;

/* "{i}" and "i" are the same macro. */
static bool
macro_same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la == 3 && a[0] == '{' && a[2] == '}') {
		a++;
		la = 1;
	}
	if (lb == 3 && b[0] == '{' && b[2] == '}') {
		b++;
		lb = 1;
	}
	return la == lb && memcmp(a, b, la) == 0;
}

static bool
macro_listed(const char *list, const char *name)
{
	char word[128];
	const char *p = list;

	while (*p) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n > 0 && n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = 0;
			if (macro_same(word, name))
				return true;
		}
		p += n;
	}
	return false;
}

/*
 * Send the macros of one stage before its command. As in Postfix, a filter
 * that sent macro lists gets exactly those and none for a stage it did not
 * list; undefined macros are left out; no packet when nothing is left.
 */
static int
macros_put(bb_conn *c, char cmd, int stage, const bb_macro *mv, size_t n)
{
	long at = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (mv[i].value == NULL)
			continue;
		if (c->have_symlist
		    && (c->symlist[stage] == NULL || !macro_listed(c->symlist[stage], mv[i].name)))
			continue;
		if (at < 0 && ((at = pkt_begin(c, SMFIC_MACRO)) < 0 || put(c, &cmd, 1) < 0))
			return -1;
		if (put_str(c, mv[i].name) < 0 || put_str(c, mv[i].value) < 0)
			return -1;
	}
	return at < 0 ? 0 : pkt_end(c, at);
}

/* ------------------------------------------------------------ a session */

static int
sock_open(bb_conn *c)
{
	const char *spec = c->o->sock;
	int fd = -1;
	struct timeval tv = { .tv_sec = c->o->timeout, .tv_usec = 0 };

	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0 || spec[0] == '/') {
		struct sockaddr_un sun;
		const char *path = spec[0] == '/' ? spec : strchr(spec, ':') + 1;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(path) >= sizeof(sun.sun_path))
			return conn_fail(c, "socket path too long: %s", path);
		strcpy(sun.sun_path, path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			return conn_fail(c, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			int e = errno;

			close(fd);
			return conn_fail(c, "connect %s: %s", spec, strerror(e));
		}
	} else if (strncmp(spec, "inet:", 5) == 0) {
		char port[32], host[256];
		const char *at = strchr(spec + 5, '@');
		struct addrinfo hints, *ai, *a;
		int e;

		if (at == NULL || (size_t)(at - spec - 5) >= sizeof(port) || strlen(at + 1) >= sizeof(host))
			return conn_fail(c, "bad socket %s (want inet:PORT@HOST)", spec);
		memcpy(port, spec + 5, (size_t)(at - spec - 5));
		port[at - spec - 5] = 0;
		strcpy(host, at + 1);
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
			return conn_fail(c, "%s: %s", spec, gai_strerror(e));
		for (a = ai; a; a = a->ai_next) {
			if ((fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol)) < 0)
				continue;
			if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
				break;
			e = errno;
			close(fd);
			fd = -1;
			errno = e;
		}
		e = errno;
		freeaddrinfo(ai);
		if (fd < 0)
			return conn_fail(c, "connect %s: %s", spec, strerror(e));
	} else {
		return conn_fail(c, "bad socket %s (want unix:/path or inet:PORT@HOST)", spec);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c->fd = fd;
	return 0;
}

static int
negotiate(bb_conn *c)
{
	long at = pkt_begin(c, SMFIC_OPTNEG);
	unsigned char cmd;
	const unsigned char *d;
	size_t len, pos;
	uint32_t v[3];
	int i;

	if (put_u32(c, SMFI_PROT_VERSION) < 0 || put_u32(c, SMFI_CURR_ACTS) < 0
	    || put_u32(c, SMFI_CURR_PROT) < 0 || pkt_end(c, at) < 0)
		return -1;
	if (pkt_read(c, SMFIC_OPTNEG, &cmd, &d, &len) < 0)
		return -1;
	if (cmd != SMFIC_OPTNEG)
		return conn_fail(c, "filter answered option negotiation with '%c'", cmd);
	if (len < 12)
		return conn_fail(c, "option negotiation reply too short (%zu bytes)", len);
	for (i = 0; i < 3; i++) {
		memcpy(&v[i], d + 4 * i, 4);
		v[i] = ntohl(v[i]);
	}
	if (v[0] < 2 || v[0] > SMFI_PROT_VERSION)
		return conn_fail(c, "filter protocol version %u, want 2..%d", v[0], SMFI_PROT_VERSION);
	if ((v[1] & ~(uint32_t)SMFI_CURR_ACTS) != 0)
		return conn_fail(c, "filter asks for actions 0x%x that were not offered", v[1]);
	if ((v[2] & ~(uint32_t)(SMFI_CURR_PROT | SMFI_INTERNAL)) != 0)
		return conn_fail(c, "filter asks for protocol flags 0x%x that were not offered", v[2]);
	c->version = v[0];
	c->actions = v[1];
	c->pflags = v[2];
	/* secondary negotiation: macro lists (stage number, list of names) */
	for (pos = 12; pos < len;) {
		uint32_t stage;
		const char *list;

		if (len - pos < 5)
			return conn_fail(c, "truncated macro list in option negotiation");
		memcpy(&stage, d + pos, 4);
		stage = ntohl(stage);
		pos += 4;
		if ((list = data_str(d, len, &pos)) == NULL)
			return conn_fail(c, "unterminated macro list in option negotiation");
		if ((c->actions & BB_F_SETSYMLIST) == 0)
			return conn_fail(c, "filter sent macro lists without negotiating SMFIF_SETSYMLIST");
		if (stage >= BB_NSTAGES)
			continue;       /* Postfix ignores unknown stages too */
		free(c->symlist[stage]);
		if ((c->symlist[stage] = strdup(list)) == NULL)
			return conn_fail(c, "out of memory");
		c->have_symlist = true;
	}
	return 0;
}

/* Remember the first reply text of each kind, for the report. */
static void
note_text(bb_conn *c, bb_kind k, int text)
{
	if (text == 1 && c->st.first_text[k][0] == 0)
		snprintf(c->st.first_text[k], sizeof(c->st.first_text[k]), "%s", c->text);
}

/*
 * A decision for a whole session (at CONNECT or HELO): accept means the filter
 * wants nothing more from this connection, the others refuse every message.
 */
static int
session_reply(bb_conn *c, int event, bb_rtype rt, int text)
{
	switch (rt) {
	case BB_R_CONTINUE:
		return 0;
	case BB_R_ACCEPT: c->session = BB_ACCEPT; break;
	case BB_R_REJECT: c->session = BB_REJECT; break;
	case BB_R_TEMPFAIL: c->session = BB_TEMPFAIL; break;
	case BB_R_SHUTDOWN: c->session = BB_TEMPFAIL; c->dead = true; break;
	case BB_R_DISCARD:
	case BB_R_SKIP:
		return conn_fail(c, "filter answered %s with %s, not allowed there", cmd_name(event),
		    rt == BB_R_SKIP ? "skip" : "discard");
	}
	note_text(c, (bb_kind)c->session, text);
	return 0;
}

static int
session_open(bb_conn *c)
{
	const bb_opts *o = c->o;
	char under[128];
	bb_macro cm[] = {
		{ "j", "mta.bench.example" },
		{ "{daemon_name}", "bwbench" },
		{ "{daemon_addr}", "127.0.0.1" },
		{ "v", "Postfix 3.7 (bwbench)" },
		{ "_", under },
	};
	bool family6 = strchr(o->client, ':') != NULL;
	uint16_t nport = htons((uint16_t)(40000 + c->id % 20000));
	bb_rtype rt;
	long at;
	int r;

	c->session = -1;
	c->dead = false;
	c->have_symlist = false;
	for (r = 0; r < BB_NSTAGES; r++) {
		free(c->symlist[r]);
		c->symlist[r] = NULL;
	}
	c->out.len = 0;
	c->in.len = c->in.off = 0;
	if (sock_open(c) < 0 || negotiate(c) < 0)
		return -1;
	snprintf(under, sizeof(under), "localhost [%s]", o->client);
	if (macros_put(c, SMFIC_CONNECT, BB_M_CONNECT, cm, sizeof(cm) / sizeof(cm[0])) < 0)
		return -1;
	if ((c->pflags & SMFIP_NOCONNECT) == 0) {
		if ((at = pkt_begin(c, SMFIC_CONNECT)) < 0 || put_str(c, "localhost") < 0
		    || put(c, family6 ? "6" : "4", 1) < 0 || put(c, &nport, 2) < 0
		    || put_str(c, o->client) < 0 || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_CONN) == 0) {
			if ((r = wait_reply(c, SMFIC_CONNECT, &rt)) < 0 || session_reply(c, SMFIC_CONNECT, rt, r) < 0)
				return -1;
			if (c->session >= 0)
				return 0;
		}
	}
	/* Postfix's default HELO macros are TLS ones: none without TLS */
	if ((c->pflags & SMFIP_NOHELO) == 0) {
		if ((at = pkt_begin(c, SMFIC_HELO)) < 0 || put_str(c, "client.bench.example") < 0
		    || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_HELO) == 0) {
			if ((r = wait_reply(c, SMFIC_HELO, &rt)) < 0 || session_reply(c, SMFIC_HELO, rt, r) < 0)
				return -1;
		}
	}
	return 0;
}

static void
session_close(bb_conn *c)
{
	long at;

	if (c->fd < 0)
		return;
	if (!c->dead && (at = pkt_begin(c, SMFIC_QUIT)) >= 0 && pkt_end(c, at) == 0)
		(void)flush(c);
	close(c->fd);
	c->fd = -1;
}

static bb_kind
kind_of(bb_rtype rt)
{
	switch (rt) {
	case BB_R_REJECT: return BB_REJECT;
	case BB_R_TEMPFAIL: return BB_TEMPFAIL;
	case BB_R_SHUTDOWN: return BB_TEMPFAIL;
	case BB_R_DISCARD: return BB_DISCARD;
	default: return BB_ACCEPT;
	}
}

/* The filter decided the message with reply rt (r == 1: with a reply code). */
static int
decided(bb_conn *c, bb_rtype rt, int r, bb_kind *kind)
{
	*kind = kind_of(rt);
	note_text(c, *kind, r);
	if (rt == BB_R_SHUTDOWN)
		c->dead = true;
	return 0;
}

/*
 * One mail transaction. Returns 0 with *kind set, or -1 on an error. Sets
 * *complete when the filter saw the whole message through end of message.
 */
static int
transaction(bb_conn *c, long seq, bb_kind *kind, bool *complete)
{
	const bb_opts *o = c->o;
	const bb_message *m = c->msg;
	char qid[32], addr[256], from[260], size[32], rcpt[128], rcptb[140];
	bb_macro mm[] = {
		{ "i", qid }, { "{auth_type}", o->auth ? "PLAIN" : NULL },
		{ "{auth_authen}", o->auth }, { "{mail_addr}", addr }, { "{mail_mailer}", "smtp" },
	};
	bb_macro rm[] = {
		{ "i", qid }, { "{rcpt_addr}", rcpt }, { "{rcpt_host}", "example.net" },
		{ "{rcpt_mailer}", "smtp" },
	};
	bb_macro im[] = { { "i", qid } };
	bb_rtype rt = BB_R_CONTINUE;
	int r = 0, i, accepted = 0;
	bb_kind last_refusal = BB_REJECT;
	size_t h, off;
	long at;

	*complete = false;
	snprintf(qid, sizeof(qid), "%02X%08lX", c->id & 0xff, (unsigned long)seq & 0xffffffffUL);
	snprintf(addr, sizeof(addr), "%s", o->from ? o->from : m->from[0] ? m->from : "bench@bench.example");
	snprintf(from, sizeof(from), "<%s>", addr);
	snprintf(size, sizeof(size), "SIZE=%zu", m->size);

#define DECIDED(rt_) ((rt_) != BB_R_CONTINUE && (rt_) != BB_R_SKIP)
#define FINISH(rt_, r_) return decided(c, (rt_), (r_), kind)

	/* MAIL */
	if (macros_put(c, SMFIC_MAIL, BB_M_ENVFROM, mm, sizeof(mm) / sizeof(mm[0])) < 0)
		return -1;
	if ((c->pflags & SMFIP_NOMAIL) == 0) {
		at = pkt_begin(c, SMFIC_MAIL);
		if (put_str(c, from) < 0 || put_str(c, size) < 0 || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_MAIL) == 0) {
			if ((r = wait_reply(c, SMFIC_MAIL, &rt)) < 0)
				return -1;
			if (rt == BB_R_SKIP)
				return conn_fail(c, "filter answered MAIL with skip");
			if (DECIDED(rt))
				FINISH(rt, r);
		}
	}
	/* RCPT */
	for (i = 0; i < o->rcpts; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%d.%ld.%d@example.net", c->id, seq, i);
		snprintf(rcptb, sizeof(rcptb), "<%s>", rcpt);
		if (macros_put(c, SMFIC_RCPT, BB_M_ENVRCPT, rm, sizeof(rm) / sizeof(rm[0])) < 0)
			return -1;
		if ((c->pflags & SMFIP_NORCPT) != 0) {
			accepted++;
			continue;
		}
		at = pkt_begin(c, SMFIC_RCPT);
		if (put_str(c, rcptb) < 0 || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_RCPT) != 0) {
			accepted++;
			continue;
		}
		if ((r = wait_reply(c, SMFIC_RCPT, &rt)) < 0)
			return -1;
		switch (rt) {
		case BB_R_CONTINUE:
			accepted++;
			break;
		case BB_R_REJECT:
		case BB_R_TEMPFAIL:
			/* this recipient only */
			c->st.rcptrej++;
			last_refusal = kind_of(rt);
			note_text(c, last_refusal, r);
			break;
		case BB_R_SKIP:
			return conn_fail(c, "filter answered RCPT with skip");
		default:
			FINISH(rt, r);
		}
	}
	if (accepted == 0) {
		*kind = last_refusal;
		return 0;
	}
	/* DATA */
	if (macros_put(c, SMFIC_DATA, BB_M_DATA, im, 1) < 0)
		return -1;
	if ((c->pflags & SMFIP_NODATA) == 0) {
		if ((at = pkt_begin(c, SMFIC_DATA)) < 0 || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_DATA) == 0) {
			if ((r = wait_reply(c, SMFIC_DATA, &rt)) < 0)
				return -1;
			if (rt == BB_R_SKIP)
				return conn_fail(c, "filter answered DATA with skip");
			if (DECIDED(rt))
				FINISH(rt, r);
		}
	}
	/* headers: each with the end-of-header macros, as Postfix does */
	if ((c->pflags & SMFIP_NOHDRS) == 0) {
		for (h = 0; h < m->nhdrs; h++) {
			const char *v = m->hdrs[h].value;

			if ((c->pflags & SMFIP_HDR_LEADSPC) == 0 && *v == ' ')
				v++;    /* Sendmail eats one space after the colon */
			if (macros_put(c, SMFIC_HEADER, BB_M_EOH, im, 1) < 0)
				return -1;
			at = pkt_begin(c, SMFIC_HEADER);
			if (put_str(c, m->hdrs[h].name) < 0 || put_str(c, v) < 0 || pkt_end(c, at) < 0)
				return -1;
			if ((c->pflags & SMFIP_NR_HDR) != 0)
				continue;
			if ((r = wait_reply(c, SMFIC_HEADER, &rt)) < 0)
				return -1;
			if (rt == BB_R_SKIP)
				break;  /* Postfix: skip the rest of this event type */
			if (DECIDED(rt))
				FINISH(rt, r);
		}
	}
	if ((c->pflags & SMFIP_NOEOH) == 0) {
		if (macros_put(c, SMFIC_EOH, BB_M_EOH, im, 1) < 0)
			return -1;
		if ((at = pkt_begin(c, SMFIC_EOH)) < 0 || pkt_end(c, at) < 0)
			return -1;
		if ((c->pflags & SMFIP_NR_EOH) == 0) {
			if ((r = wait_reply(c, SMFIC_EOH, &rt)) < 0)
				return -1;
			if (rt == BB_R_SKIP)
				return conn_fail(c, "filter answered EOH with skip");
			if (DECIDED(rt))
				FINISH(rt, r);
		}
	}
	/* body chunks, each with the end-of-data macros */
	if ((c->pflags & SMFIP_NOBODY) == 0) {
		for (off = 0; off < m->bodylen; off += o->chunk) {
			size_t n = m->bodylen - off < o->chunk ? m->bodylen - off : o->chunk;

			if (macros_put(c, SMFIC_BODY, BB_M_EOM, im, 1) < 0)
				return -1;
			at = pkt_begin(c, SMFIC_BODY);
			if (put(c, m->body + off, n) < 0 || pkt_end(c, at) < 0)
				return -1;
			if ((c->pflags & SMFIP_NR_BODY) != 0)
				continue;
			if ((r = wait_reply(c, SMFIC_BODY, &rt)) < 0)
				return -1;
			if (rt == BB_R_SKIP) {
				c->st.skip++;
				break;
			}
			if (DECIDED(rt))
				FINISH(rt, r);
		}
	}
	/* end of message: edits, then the final reply */
	if (macros_put(c, SMFIC_BODYEOB, BB_M_EOM, im, 1) < 0)
		return -1;
	if ((at = pkt_begin(c, SMFIC_BODYEOB)) < 0 || pkt_end(c, at) < 0)
		return -1;
	if ((r = wait_reply(c, SMFIC_BODYEOB, &rt)) < 0)
		return -1;
	if (rt == BB_R_SKIP)
		return conn_fail(c, "filter answered end of message with skip");
	*complete = true;
	FINISH(rt, r);
#undef DECIDED
#undef FINISH
}

static void *
conn_main(void *arg)
{
	bb_conn *c = arg;
	long seq;
	int setup;

	setup = session_open(c);
	pthread_barrier_wait(&bb_start);
	if (setup < 0) {
		session_close(c);
		return NULL;
	}
	for (seq = 0; seq < c->o->msgs && !atomic_load(&bb_stop); seq++) {
		bb_kind kind;
		bool complete = false;
		double t0;

		if (c->dead) {
			session_close(c);
			c->st.reconnects++;
			if (session_open(c) < 0)
				break;
		}
		if (c->session >= 0) {
			/* decided for the session: the filter sees no more messages */
			c->st.kind[c->session]++;
			c->st.session++;
			continue;
		}
		t0 = now_ms();
		if (transaction(c, seq, &kind, &complete) < 0)
			break;
		c->st.lat[c->st.nlat++] = now_ms() - t0;
		c->st.sent++;
		c->st.kind[kind]++;
		/* a transaction that ended early: the filter may still hold it */
		if (!complete && !c->dead) {
			long at = pkt_begin(c, SMFIC_ABORT);

			if (pkt_end(c, at) < 0)
				break;
		}
	}
	session_close(c);
	return NULL;
}

/* ------------------------------------------------------------ report */

static void
flags_text(char *out, size_t outlen, uint32_t v, const char *const *names, int n)
{
	size_t len = 0;
	int i;

	out[0] = 0;
	for (i = 0; i < n; i++) {
		if ((v & (1UL << i)) == 0 || names[i] == NULL)
			continue;
		len += (size_t)snprintf(out + len, len < outlen ? outlen - len : 0, "%s%s", len ? " " : "", names[i]);
		if (len >= outlen)
			break;
	}
	if (out[0] == 0)
		snprintf(out, outlen, "-");
}

static const char *const bb_act_names[] = { "ADDHDRS", "CHGBODY", "ADDRCPT", "DELRCPT",
	"CHGHDRS", "QUARANTINE", "CHGFROM", "ADDRCPT_PAR", "SETSYMLIST" };
static const char *const bb_skip_names[] = { "CONNECT", "HELO", "MAIL", "RCPT", "BODY", "HEADERS",
	"EOH", NULL, "UNKNOWN", "DATA" };
static const char *const bb_nr_names[] = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, "HDR", NULL,
	NULL, NULL, NULL, "CONN", "HELO", "MAIL", "RCPT", "DATA", "UNKN", "EOH", "BODY" };

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
pct(const double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k > 0 ? k - 1 : 0];
}

int
main(int argc, char **argv)
{
	bb_opts o = { .conns = 8, .msgs = 1000, .rcpts = 1, .chunk = MILTER_CHUNK_SIZE,
		.timeout = 30, .client = "127.0.0.1" };
	bb_message msg;
	bb_conn *conns;
	bb_stats tot;
	char err[512], acts[256], skips[256], nrs[256];
	double t0, secs, *all, sum = 0;
	size_t nall = 0, i, k;
	int ch, c, failed = 0;

	while ((ch = getopt(argc, argv, "s:f:c:m:r:a:F:i:k:t:w:qv")) != -1) {
		char *end;
		long v;

		switch (ch) {
		case 's': o.sock = optarg; break;
		case 'f': o.file = optarg; break;
		case 'a': o.auth = optarg; break;
		case 'F': o.from = optarg; break;
		case 'i': o.client = optarg; break;
		case 'q': o.quiet = true; break;
		case 'v': o.verbose = true; break;
		case 'c': case 'm': case 'r': case 'k': case 't': case 'w':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < (ch == 'w' ? 0 : 1)) {
				fprintf(stderr, "bwbench: -%c %s: not a positive number\n", ch, optarg);
				usage();
			}
			if ((ch == 'c' && v > BB_MAX_CONNS) || (ch == 'r' && v > BB_MAX_RCPTS)
			    || (ch == 'k' && v > MILTER_CHUNK_SIZE) || (ch == 'm' && v > 100000000)
			    || ((ch == 't' || ch == 'w') && v > 3600)) {
				fprintf(stderr, "bwbench: -%c %s: too large\n", ch, optarg);
				usage();
			}
			if (ch == 'c') o.conns = (int)v;
			else if (ch == 'm') o.msgs = v;
			else if (ch == 'r') o.rcpts = (int)v;
			else if (ch == 'k') o.chunk = (size_t)v;
			else if (ch == 't') o.timeout = (int)v;
			else o.wait = (int)v;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.sock == NULL || o.file == NULL)
		usage();
	if (o.from && (strlen(o.from) > 250 || strpbrk(o.from, "<> \t\r\n"))) {
		fprintf(stderr, "bwbench: -F %s: want a bare address\n", o.from);
		usage();
	}
	if (strlen(o.client) > 64) {
		fprintf(stderr, "bwbench: -i %s: too long\n", o.client);
		usage();
	}
	if (o.auth && strlen(o.auth) > 256) {
		fprintf(stderr, "bwbench: -a: too long\n");
		usage();
	}
	signal(SIGPIPE, SIG_IGN);
	if (message_load(o.file, &msg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bwbench: %s\n", err);
		return 1;
	}
	if ((conns = calloc((size_t)o.conns, sizeof(*conns))) == NULL) {
		fprintf(stderr, "bwbench: out of memory\n");
		return 1;
	}

	/* wait for the filter's socket (it may still be starting) */
	if (o.wait > 0) {
		double until = now_ms() + o.wait * 1000.0;
		bb_conn probe = { .o = &o, .fd = -1 };

		for (;;) {
			probe.err[0] = 0;
			atomic_store(&bb_stop, 0);
			if (sock_open(&probe) == 0) {
				close(probe.fd);
				break;
			}
			if (now_ms() > until) {
				fprintf(stderr, "bwbench: %s\n", probe.err);
				return 1;
			}
			nanosleep(&(struct timespec){ .tv_sec = 0, .tv_nsec = 50000000 }, NULL);
		}
		atomic_store(&bb_stop, 0);
	}

	pthread_barrier_init(&bb_start, NULL, (unsigned)o.conns + 1);
	for (c = 0; c < o.conns; c++) {
		bb_conn *cn = &conns[c];

		cn->id = c;
		cn->fd = -1;
		cn->o = &o;
		cn->msg = &msg;
		if ((cn->st.lat = calloc((size_t)o.msgs, sizeof(double))) == NULL) {
			fprintf(stderr, "bwbench: out of memory\n");
			return 1;
		}
		if (pthread_create(&cn->tid, NULL, conn_main, cn) != 0) {
			fprintf(stderr, "bwbench: cannot start thread %d\n", c);
			return 1;
		}
	}
	pthread_barrier_wait(&bb_start);
	t0 = now_ms();
	for (c = 0; c < o.conns; c++)
		pthread_join(conns[c].tid, NULL);
	secs = (now_ms() - t0) / 1000.0;

	memset(&tot, 0, sizeof(tot));
	for (c = 0; c < o.conns; c++) {
		bb_stats *s = &conns[c].st;

		if (conns[c].err[0]) {
			fprintf(stderr, "bwbench: error: connection %d: %s\n", c, conns[c].err);
			failed = 1;
		}
		for (k = 0; k < BB_NKINDS; k++) {
			tot.kind[k] += s->kind[k];
			if (tot.first_text[k][0] == 0)
				memcpy(tot.first_text[k], s->first_text[k], sizeof(tot.first_text[k]));
		}
		tot.sent += s->sent;
		tot.session += s->session;
		tot.replycode += s->replycode;
		tot.skip += s->skip;
		tot.rcptrej += s->rcptrej;
		for (k = 0; k < BB_NEDITS; k++)
			tot.edit[k] += s->edit[k];
		tot.reconnects += s->reconnects;
		nall += s->nlat;
	}
	if ((all = malloc((nall ? nall : 1) * sizeof(double))) == NULL) {
		fprintf(stderr, "bwbench: out of memory\n");
		return 1;
	}
	for (nall = 0, c = 0; c < o.conns; c++) {
		memcpy(all + nall, conns[c].st.lat, conns[c].st.nlat * sizeof(double));
		nall += conns[c].st.nlat;
	}
	qsort(all, nall, sizeof(double), cmp_double);
	for (i = 0; i < nall; i++)
		sum += all[i];

	if (!o.quiet) {
		long total = tot.kind[0] + tot.kind[1] + tot.kind[2] + tot.kind[3];
		bb_conn *c0 = &conns[0];

		printf("bwbench: %s: %d connections x %ld messages, %s (%zu bytes, %zu headers, "
		    "%zu body bytes in chunks of <= %zu), %d recipient%s\n", o.sock, o.conns, o.msgs,
		    o.file, msg.size, msg.nhdrs, msg.bodylen, o.chunk, o.rcpts, o.rcpts == 1 ? "" : "s");
		if (c0->version) {
			flags_text(acts, sizeof(acts), c0->actions, bb_act_names, 9);
			flags_text(skips, sizeof(skips), c0->pflags, bb_skip_names, 10);
			flags_text(nrs, sizeof(nrs), c0->pflags, bb_nr_names, 20);
			printf("negotiated: version %u, actions %s; skipped steps %s; no reply for %s%s%s\n",
			    c0->version, acts, skips, nrs, c0->pflags & SMFIP_SKIP ? "; uses SKIP" : "",
			    c0->have_symlist ? "; macro lists" : "");
		}
		printf("latency ms: min %.3f avg %.3f p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
		    nall ? all[0] : 0.0, nall ? sum / (double)nall : 0.0, pct(all, nall, 50),
		    pct(all, nall, 90), pct(all, nall, 99), nall ? all[nall - 1] : 0.0);
		printf("replies: %ld messages, accept %ld, reject %ld, tempfail %ld, discard %ld; "
		    "reply codes %ld, quarantined %ld, body skipped %ld, recipients refused %ld\n",
		    total, tot.kind[BB_ACCEPT], tot.kind[BB_REJECT], tot.kind[BB_TEMPFAIL],
		    tot.kind[BB_DISCARD], tot.replycode, tot.edit[BB_EDIT_QUARANTINE], tot.skip, tot.rcptrej);
		for (k = 0, i = 0; k < BB_NEDITS; k++) {
			if (tot.edit[k] == 0)
				continue;
			printf("%s%s %ld", i++ ? ", " : "edits: ", bb_edits[k].name, tot.edit[k]);
		}
		if (i > 0)
			printf("\n");
		if (tot.session > 0)
			printf("note: %ld messages were decided for the whole connection at CONNECT/HELO "
			    "and not sent\n", tot.session);
		if (tot.reconnects > 0)
			printf("note: the filter ended %ld sessions (shutdown); reconnected\n", tot.reconnects);
		for (k = 1; k < BB_NKINDS; k++)
			if (tot.first_text[k][0])
				printf("first %s: %s\n", bb_kind_name[k], tot.first_text[k]);
	}
	/* msgs: every message decided; rate: those the filter saw */
	printf("bwbench: msgs=%ld secs=%.2f rate=%.1f/s p50=%.2fms p99=%.2fms accept=%ld reject=%ld "
	    "tempfail=%ld discard=%ld quarantine=%ld replycode=%ld skip=%ld addheader=%ld "
	    "delrcpt=%ld rcptrej=%ld sent=%zu errors=%d\n",
	    tot.kind[BB_ACCEPT] + tot.kind[BB_REJECT] + tot.kind[BB_TEMPFAIL] + tot.kind[BB_DISCARD], secs, secs > 0 ? (double)nall / secs : 0.0,
	    pct(all, nall, 50), pct(all, nall, 99), tot.kind[BB_ACCEPT], tot.kind[BB_REJECT],
	    tot.kind[BB_TEMPFAIL], tot.kind[BB_DISCARD], tot.edit[BB_EDIT_QUARANTINE], tot.replycode,
	    tot.skip, tot.edit[BB_EDIT_ADDHDR], tot.edit[BB_EDIT_DELRCPT], tot.rcptrej, nall, failed);
	fflush(stdout);

	for (c = 0; c < o.conns; c++) {
		for (k = 0; k < BB_NSTAGES; k++)
			free(conns[c].symlist[k]);
		free(conns[c].st.lat);
		free(conns[c].out.p);
		free(conns[c].in.p);
	}
	free(conns);
	free(all);
	message_free(&msg);
	pthread_barrier_destroy(&bb_start);
	return failed;
}
