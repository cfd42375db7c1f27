/*
 * oneclick.c - the RFC 8058 one-click unsubscribe listener: the socket, the
 * libmicrohttpd server, the per-address rate limiter, the request rules.
 *
 * What a request gets (the same for every client, after the rate limit):
 *   POST .../TOKEN with List-Unsubscribe=One-Click -> bw_optout_token():
 *     done, already -> 200 "unsubscribed"; stale -> 200 "not unsubscribed: ..."
 *     invalid -> 404; store -> 503 + Retry-After; no key -> 503
 *   POST without that field -> 400; body over OC_BODY_MAX -> 413
 *   GET/HEAD .../TOKEN -> 200, a page with a form that makes the POST
 *     (token verified, nothing written); invalid -> 404
 *   last path segment not token-shaped -> 400; other methods -> 405
 *   over OneClickRate -> 429 + Retry-After
 * Every request is logged at info (the first refusal of a flood only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "consent.h"
#include "engine.h"
#include "log.h"
#include "oneclick.h"
#include "optout.h"

/* ---------------------------------------------------------------- socket */

bool
oc_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
    size_t errlen)
{
	char host[INET6_ADDRSTRLEN];
	const char *port, *colon;
	size_t hl;
	bool v6;
	char *end;
	unsigned long pn;

	if (spec == NULL || *spec == 0) {
		snprintf(err, errlen, "empty: want address:port");
		return false;
	}
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (rb == NULL || rb[1] != ':') {
			snprintf(err, errlen, "want [IPv6 address]:port");
			return false;
		}
		hl = (size_t)(rb - spec - 1);
		port = rb + 2;
		v6 = true;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || strchr(spec, ':') != colon) {
			snprintf(err, errlen, "want address:port (an IPv6 address in brackets: [::1]:8025)");
			return false;
		}
		hl = (size_t)(colon - spec);
		port = colon + 1;
		v6 = false;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errlen, "want an address before the port");
		return false;
	}
	memcpy(host, spec + (v6 ? 1 : 0), hl);
	host[hl] = 0;
	errno = 0;
	pn = strtoul(port, &end, 10);
	if (port[0] < '0' || port[0] > '9' || *end || errno || pn == 0 || pn > 65535) {
		snprintf(err, errlen, "port \"%.20s\" is not a number from 1 to 65535", port);
		return false;
	}
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv6 address", host);
			return false;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)pn);
		*sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			snprintf(err, errlen, "\"%s\" is not an IPv4 address (no host names; "
			    "IPv6 in brackets)", host);
			return false;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)pn);
		*sslen = sizeof(*s4);
	}
	return true;
}

int
oc_listen_bind(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	if (!oc_listen_parse(spec, &ss, &len, err, errlen))
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "%s: socket: %s", spec, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- rate limiter */

#define OC_COST 60000   /* one request, in bucket units: a bucket gains per_minute units a ms */
#define OC_SETS (OC_RATE_SLOTS / OC_RATE_WAYS)

typedef struct oc_bucket {
	uint8_t key[16];  /* IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 */
	int64_t units;
	int64_t at_ms;    /* last refill */
	bool used;
	bool limited;     /* refused since the last allowed request */
} oc_bucket;

struct oc_rate {
	pthread_mutex_t lock;
	uint64_t seed;    /* random: the sets an address falls in cannot be aimed at */
	oc_bucket b[OC_RATE_SLOTS];
};

oc_rate *
oc_rate_new(void)
{
	oc_rate *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != (ssize_t)sizeof(r->seed))
		r->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	return r;
}

void
oc_rate_free(oc_rate *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static uint64_t
oc_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void
oc_rate_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		memcpy(key, a->s6_addr, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
	}
}

static void
oc_rate_refill(oc_bucket *b, unsigned per_minute, int64_t cap, int64_t now_ms)
{
	if (now_ms > b->at_ms) {
		int64_t dt = now_ms - b->at_ms;
		if (dt > 60000)
			dt = 60000;   /* a minute fills any bucket */
		b->units += dt * (int64_t)per_minute;
		b->at_ms = now_ms;
	}
	if (b->units > cap)
		b->units = cap;   /* also when a reload lowered the rate */
}

unsigned
oc_rate_take(oc_rate *r, const struct sockaddr *sa, unsigned per_minute, int64_t now_ms,
    bool *first)
{
	uint8_t key[16];
	uint64_t h, k0, k1;
	oc_bucket *set, *hit = NULL, *victim = NULL;
	int64_t cap;
	unsigned wait = 0;

	if (per_minute == 0)
		per_minute = 1;
	cap = (int64_t)per_minute * OC_COST;
	*first = false;
	oc_rate_key(sa, key);
	memcpy(&k0, key, 8);
	memcpy(&k1, key + 8, 8);
	h = oc_mix(oc_mix(r->seed ^ k0) ^ k1);
	set = &r->b[(h % OC_SETS) * OC_RATE_WAYS];

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < OC_RATE_WAYS; i++) {
		oc_bucket *b = &set[i];
		if (!b->used) {
			if (victim == NULL || victim->used)
				victim = b;
			continue;
		}
		oc_rate_refill(b, per_minute, cap, now_ms);
		if (memcmp(b->key, key, sizeof(key)) == 0) {
			hit = b;
			break;
		}
		if (victim == NULL || (victim->used && b->units > victim->units))
			victim = b;
	}
	if (hit == NULL) {
		hit = victim;
		memset(hit, 0, sizeof(*hit));
		memcpy(hit->key, key, sizeof(key));
		hit->used = true;
		hit->units = cap;
		hit->at_ms = now_ms;
	}
	if (hit->units >= OC_COST) {
		hit->units -= OC_COST;
		hit->limited = false;
	} else {
		int64_t per_s = (int64_t)per_minute * 1000;
		wait = (unsigned)((OC_COST - hit->units + per_s - 1) / per_s);
		if (wait == 0)
			wait = 1;
		*first = !hit->limited;
		hit->limited = true;
	}
	pthread_mutex_unlock(&r->lock);
	return wait;
}

/* ---------------------------------------------------------------- requests */

struct oc_server {
	struct MHD_Daemon *d;
	oc_ops ops;
	oc_rate *rate;
};

typedef struct oc_req {
	struct sockaddr_storage sa;          /* whose bucket: the client */
	char client[INET6_ADDRSTRLEN];       /* the client, as text */
	char via[INET6_ADDRSTRLEN];          /* the local proxy it came through, or "" */
	char token[BW_TOKEN_MAX + 1];
	char value[32];                      /* List-Unsubscribe in a multipart body */
	size_t vlen;
	size_t len;
	char body[OC_BODY_MAX];
} oc_req;

static const char oc_page[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"robots\" content=\"noindex\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Unsubscribe</title></head>\n"
    "<body><h1>Unsubscribe</h1>\n"
    "<p>Stop these mailings to this address?</p>\n"
    "<form method=\"post\">\n"
    "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n"
    "<button type=\"submit\">Unsubscribe</button>\n"
    "</form></body></html>\n";

static int64_t
oc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
oc_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static void
oc_addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else {
		snprintf(out, len, "unknown");
		return;
	}
	if (inet_ntop(sa->sa_family, a, out, (socklen_t)len) == NULL)
		snprintf(out, len, "unknown");
}

/* The last address of X-Forwarded-For (the one the proxy added), as a sockaddr. */
static bool
oc_forwarded(const char *xff, struct sockaddr_storage *ss)
{
	const char *p = strrchr(xff, ',');
	char a[INET6_ADDRSTRLEN + 2];
	size_t n;

	p = p ? p + 1 : xff;
	while (*p == ' ' || *p == '\t')
		p++;
	for (n = 0; p[n] && p[n] != ' ' && p[n] != '\t' && n < sizeof(a) - 1; n++)
		a[n] = p[n];
	a[n] = 0;
	if (p[n] && p[n] != ' ' && p[n] != '\t')
		return false;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return true;
	}
	if (a[0] == '[' && n > 2 && a[n - 1] == ']') {
		memmove(a, a + 1, n - 2);
		a[n - 2] = 0;
	}
	if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return true;
	}
	return false;
}

/*
 * Who is asking. A connection from loopback is taken to come through a local
 * reverse proxy (the one that holds OneClickURL's https): the client is the
 * last address of its X-Forwarded-For, when there is one.
 */
static void
oc_client(struct MHD_Connection *conn, oc_req *q)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const char *xff;
	struct sockaddr_storage fwd;

	q->sa.ss_family = AF_UNSPEC;
	snprintf(q->client, sizeof(q->client), "unknown");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		memcpy(&q->sa, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(&q->sa, sa, sizeof(struct sockaddr_in6));
	else
		return;
	oc_addr_text(sa, q->client, sizeof(q->client));
	if (!oc_is_loopback(sa))
		return;
	xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	if (xff == NULL || !oc_forwarded(xff, &fwd))
		return;
	memcpy(q->via, q->client, sizeof(q->via));
	q->sa = fwd;
	oc_addr_text((struct sockaddr *)&q->sa, q->client, sizeof(q->client));
}

/* The token: the last path segment (one trailing slash allowed).
 * 1 found, 0 none (empty path), -1 not token-shaped. */
static int
oc_url_token(const char *url, char *tok, size_t toklen)
{
	size_t n = strlen(url);
	const char *seg;

	if (n > 0 && url[n - 1] == '/')
		n--;
	seg = url + n;
	while (seg > url && seg[-1] != '/')
		seg--;
	if (seg == url + n)
		return 0;
	if ((size_t)(url + n - seg) >= toklen)
		return -1;
	for (const char *p = seg; p < url + n; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return -1;
	memcpy(tok, seg, (size_t)(url + n - seg));
	tok[url + n - seg] = 0;
	return 1;
}

static enum MHD_Result
oc_reply(struct MHD_Connection *conn, unsigned status, const char *body, unsigned retry_after)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool html = body == oc_page;

	r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Robots-Tag", "noindex");
	if (html)
		MHD_add_response_header(r, "Content-Security-Policy",
		    "default-src 'none'; form-action 'self'; frame-ancestors 'none'");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
	if (retry_after) {
		char v[16];
		snprintf(v, sizeof(v), "%u", retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void __attribute__((format(printf, 5, 6)))
oc_log(int prio, const oc_req *q, const char *method, unsigned status, const char *fmt, ...)
{
	char what[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	bw_log(prio, "one-click: client=%s%s%s method=%.16s status=%u %s", q->client,
	    q->via[0] ? " via=" : "", q->via, method, status, what);
}

/* The first call of a request: headers are in, no body yet. */
static enum MHD_Result
oc_begin(oc_server *s, struct MHD_Connection *conn, oc_req *q, const char *url, const char *method)
{
	bw_policy *pol = s->ops.policy();
	bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0
	    || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool first;
	unsigned wait;
	enum MHD_Result ret;
	int tk;

	wait = oc_rate_take(s->rate, (struct sockaddr *)&q->sa, pol->conf.one_click_rate,
	    oc_now_ms(), &first);
	if (wait) {
		oc_log(first ? LOG_INFO : LOG_DEBUG, q, method, 429,
		    "result=rate-limited (OneClickRate %u a minute)%s", pol->conf.one_click_rate,
		    first ? ": further refusals logged at debug" : "");
		ret = oc_reply(conn, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests, try again later\n",
		    wait);
		goto out;
	}
	if (!is_get && strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		oc_log(LOG_INFO, q, method, 405, "result=bad-method");
		ret = oc_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", 0);
		goto out;
	}
	if ((tk = oc_url_token(url, q->token, sizeof(q->token))) <= 0) {
		unsigned st = tk == 0 ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST;
		oc_log(LOG_INFO, q, method, st, "result=%s", tk == 0 ? "no-token" : "malformed-token");
		ret = oc_reply(conn, st, tk == 0 ? "not found\n" : "malformed unsubscribe link\n", 0);
		goto out;
	}
	if (is_get) {
		/* verified for the page, so a bad link says so before the button */
		char sender[BW_SENDER_MAX + 1], rcpt[BW_ADDR_MAX + 1];
		int64_t issued;
		bw_token_status ts;

		if (pol->token_keys == NULL) {
			oc_log(LOG_WARNING, q, method, 503, "result=no-key: no TokenKeyFile configured");
			ret = oc_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable, try again later\n",
			    OC_RETRY_STORE);
			goto out;
		}
		ts = bw_token_verify(pol->token_keys, q->token, (int64_t)bw_clock_now(),
		    (int64_t)pol->conf.token_max_age, sender, sizeof(sender), rcpt, sizeof(rcpt), &issued);
		if (ts != BW_TOKEN_OK) {
			oc_log(LOG_INFO, q, method, 404, "result=invalid: token %s",
			    bw_token_status_name(ts));
			ret = oc_reply(conn, MHD_HTTP_NOT_FOUND, "unknown or expired unsubscribe link\n", 0);
		} else {
			oc_log(LOG_INFO, q, method, 200, "result=form: sender %s rcpt %s", sender, rcpt);
			ret = oc_reply(conn, MHD_HTTP_OK, oc_page, 0);
		}
		goto out;
	}
	{
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > OC_BODY_MAX) {
			oc_log(LOG_INFO, q, method, 413, "result=too-large: body of %.20s bytes", cl);
			ret = oc_reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n", 0);
			goto out;
		}
	}
	ret = MHD_YES;   /* now the body */
out:
	bw_policy_unref(pol);
	return ret;
}

static enum MHD_Result
oc_post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
    const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	oc_req *q = cls;

	(void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
	if (key == NULL || strcasecmp(key, "List-Unsubscribe") != 0)
		return MHD_YES;
	if (off + size < sizeof(q->value)) {
		memcpy(q->value + off, data, size);
		q->vlen = (size_t)off + size;
	} else
		q->vlen = sizeof(q->value);   /* too long to be One-Click */
	return MHD_YES;
}

static bool
oc_is_one_click(const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	return n == 9 && strncasecmp(v, "One-Click", 9) == 0;
}

static int
oc_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent- and plus-decode [p, e) into out (at most outlen - 1 bytes);
 * false when it does not fit. */
static bool
oc_form_decode(const char *p, const char *e, char *out, size_t outlen, size_t *n)
{
	*n = 0;
	while (p < e) {
		char c = *p++;
		if (c == '+')
			c = ' ';
		else if (c == '%' && e - p >= 2 && oc_hex(p[0]) >= 0 && oc_hex(p[1]) >= 0) {
			c = (char)(oc_hex(p[0]) * 16 + oc_hex(p[1]));
			p += 2;
		}
		if (*n + 1 >= outlen)
			return false;
		out[(*n)++] = c;
	}
	out[*n] = 0;
	return true;
}

/* application/x-www-form-urlencoded (or no type): does a pair say
 * List-Unsubscribe=One-Click? */
static bool
oc_form_one_click(const char *body, size_t len)
{
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		char k[32], v[32];
		size_t kn, vn;

		if (eq && oc_form_decode(p, eq, k, sizeof(k), &kn) && kn == 16
		    && strcasecmp(k, "List-Unsubscribe") == 0
		    && oc_form_decode(eq + 1, pe, v, sizeof(v), &vn) && oc_is_one_click(v, vn))
			return true;
		p = pe + (amp != NULL);
	}
	return false;
}

static bool
oc_body_one_click(struct MHD_Connection *conn, oc_req *q)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);

	if (ct && strncasecmp(ct, MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA,
	    strlen(MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA)) == 0) {
		struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, 1024, oc_post_field, q);
		if (pp == NULL)
			return false;
		MHD_post_process(pp, q->body, q->len);
		MHD_destroy_post_processor(pp);
		return q->vlen < sizeof(q->value) && oc_is_one_click(q->value, q->vlen);
	}
	return oc_form_one_click(q->body, q->len);
}

/* The body is in: the unsubscribe itself. */
static enum MHD_Result
oc_post(oc_server *s, struct MHD_Connection *conn, oc_req *q, const char *method)
{
	char sender[BW_SENDER_MAX + 1], rcpt[BW_ADDR_MAX + 1], why[600];
	bw_policy *pol;
	bw_optout_result r;
	enum MHD_Result ret;

	if (!oc_body_one_click(conn, q)) {
		oc_log(LOG_INFO, q, method, 400, "result=no-one-click: no List-Unsubscribe=One-Click "
		    "in the body");
		return oc_reply(conn, MHD_HTTP_BAD_REQUEST,
		    "a one-click unsubscribe is a POST of List-Unsubscribe=One-Click (RFC 8058)\n", 0);
	}
	pol = s->ops.policy();
	why[0] = 0;
	r = bw_optout_token(pol, s->ops.store(), q->token, "one-click", (int64_t)bw_clock_now(), sender,
	    sizeof(sender), rcpt, sizeof(rcpt), why, sizeof(why));
	bw_policy_unref(pol);
	switch (r) {
	case BW_OPTOUT_DONE:
		bw_stats_count("unsubscribe:one-click");
		/* fall through */
	case BW_OPTOUT_ALREADY:
		oc_log(LOG_INFO, q, method, 200, "result=%s: %.500s", bw_optout_name(r), why);
		ret = oc_reply(conn, MHD_HTTP_OK, "unsubscribed\n", 0);
		break;
	case BW_OPTOUT_STALE:
		/* only the holder of a valid token for this recipient learns it */
		bw_stats_count("unsubscribe:stale");
		oc_log(LOG_NOTICE, q, method, 200, "result=%s: %.500s", bw_optout_name(r), why);
		ret = oc_reply(conn, MHD_HTTP_OK, "not unsubscribed: this link is older than the "
		    "subscription now in force; use the link in a newer message\n", 0);
		break;
	case BW_OPTOUT_INVALID:
		bw_stats_count("unsubscribe:invalid");
		oc_log(LOG_INFO, q, method, 404, "result=%s: %.500s", bw_optout_name(r), why);
		ret = oc_reply(conn, MHD_HTTP_NOT_FOUND, "unknown or expired unsubscribe link\n", 0);
		break;
	case BW_OPTOUT_STORE:
	case BW_OPTOUT_NOKEY:
	default:
		oc_log(LOG_WARNING, q, method, 503, "result=%s: %.500s", bw_optout_name(r), why);
		ret = oc_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable, try again later\n",
		    OC_RETRY_STORE);
		break;
	}
	return ret;
}

static enum MHD_Result
oc_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	oc_server *s = cls;
	oc_req *q = *con_cls;

	(void)version;
	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL) {
			bw_log(LOG_ERR, "one-click: out of memory: connection closed");
			return MHD_NO;
		}
		*con_cls = q;
		oc_client(conn, q);
		return oc_begin(s, conn, q, url, method);
	}
	if (*upload_data_size > 0) {
		if (*upload_data_size > OC_BODY_MAX - q->len) {
			bw_log(LOG_INFO, "one-click: client=%s%s%s method=%.16s result=too-large: body "
			    "over %d bytes: connection closed", q->client, q->via[0] ? " via=" : "", q->via,
			    method, OC_BODY_MAX);
			return MHD_NO;
		}
		memcpy(q->body + q->len, upload_data, *upload_data_size);
		q->len += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return oc_post(s, conn, q, method);
}

static void
oc_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static void __attribute__((format(printf, 2, 0)))
oc_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[300];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	bw_log(LOG_DEBUG, "one-click: libmicrohttpd: %s", buf);
}

/* ---------------------------------------------------------------- server */

oc_server *
oc_start(int fd, const oc_ops *ops, char *err, size_t errlen)
{
	oc_server *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->rate = oc_rate_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	s->ops = *ops;
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, oc_handle, s,
	    MHD_OPTION_EXTERNAL_LOGGER, oc_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)OC_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)OC_CONN_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)OC_CONN_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)OC_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)OC_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, oc_done, (void *)s,
	    MHD_OPTION_END);
	if (s->d == NULL) {
		snprintf(err, errlen, "libmicrohttpd cannot serve the socket: %s",
		    errno ? strerror(errno) : "unknown error");
		oc_rate_free(s->rate);
		free(s);
		return NULL;
	}
	return s;
}

void
oc_stop(oc_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->d);
	oc_rate_free(s->rate);
	free(s);
}
