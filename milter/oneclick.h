/*
 * oneclick.h - the RFC 8058 one-click unsubscribe listener (OneClickListen).
 *
 * The supervising process binds the socket while it may still be root
 * (oc_listen_bind); the filter process serves it with libmicrohttpd
 * (oc_start) and stops it when it drains (oc_stop). A POST of
 * "List-Unsubscribe=One-Click" to a URL whose last path segment is a token
 * hands the token to bw_optout_token(); a GET shows a page with a form that
 * makes that POST (a GET never unsubscribes: link scanners fetch URLs).
 * Requests are rate-limited per client address (OneClickRate).
 *
 * Each request takes the current policy and store from the ops: a reload
 * changes the rate and the keys of the next request, not the socket.
 */
#ifndef BW_ONECLICK_H
#define BW_ONECLICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "store.h"

#define OC_BODY_MAX      4096 /* bytes of a request body */
#define OC_CONN_MAX      256  /* connections at once */
#define OC_CONN_PER_IP   32   /* connections at once from one address (a local
                               * reverse proxy is one address for all clients) */
#define OC_TIMEOUT       10   /* seconds a connection may be idle */
#define OC_CONN_MEMORY   16384 /* bytes of request line, headers and buffers per connection */
#define OC_THREADS       2    /* threads serving connections */
#define OC_RATE_SLOTS    4096 /* client addresses the rate limiter remembers */
#define OC_RATE_WAYS     8    /* ... in sets of this many (eviction within a set) */
#define OC_RETRY_STORE   60   /* Retry-After when the store fails, seconds */

/* ---- the socket ---- */

/* "127.0.0.1:8025", "[::1]:8025", "0.0.0.0:8025", "[::]:8025": a literal
 * address (no names) and a port 1..65535. false with a sentence in err. */
bool oc_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
    size_t errlen);
/* A listening TCP socket (close-on-exec) for spec, or -1 with err. */
int oc_listen_bind(const char *spec, char *err, size_t errlen);

/* ---- the server ---- */
typedef struct oc_ops {
	bw_policy *(*policy)(void); /* a new reference to the current policy */
	bw_store *(*store)(void);   /* the store, NULL while it is not open */
} oc_ops;

typedef struct oc_server oc_server;

/* Serve the listening socket fd (which it takes over and closes when it
 * stops). Threads are started here: block the signals other threads wait
 * for before calling it. NULL with err when libmicrohttpd cannot start. */
oc_server *oc_start(int fd, const oc_ops *ops, char *err, size_t errlen);
/* Stop accepting, finish the requests being answered, free. NULL is fine. */
void oc_stop(oc_server *s);

/* ---- the rate limiter (per client address; exposed for tests) ----
 * A token bucket per address: per_minute requests a minute, bursts of up
 * to per_minute. IPv4 addresses count alone, IPv6 addresses by /64 (one
 * host usually has a whole /64). A bounded table: a new address evicts, in
 * its set, the entry with the fullest bucket (a full bucket is the same as
 * no entry). now_ms is a monotonic clock in milliseconds. */
typedef struct oc_rate oc_rate;
oc_rate *oc_rate_new(void);
void oc_rate_free(oc_rate *r);
/* 0 when the request may go on; else the seconds until one will be allowed
 * (at least 1). *first is true for the first refusal after an allowed
 * request (to log a flood once). */
unsigned oc_rate_take(oc_rate *r, const struct sockaddr *sa, unsigned per_minute, int64_t now_ms,
    bool *first);

#endif
