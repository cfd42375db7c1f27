/*
 * limiter.h - the senders' rate limiters (GCRA, rate.h), kept in the
 * daemon's memory and shared by its threads.
 *
 * One limiter of messages and one of recipients per sender id, for a
 * daemon with an LMDB store (a fleet on Redis shares the store's limiters,
 * bw_store_rate_take, and falls back to these while Redis fails). Their
 * state lives in memory, not in LMDB: a limiter is touched by every
 * message, and a durable write per message would cost more than the rest
 * of the policy. A restart therefore starts every
 * sender with a full bucket; the sender's record in the store says when an
 * admin last reset its counters (rate_reset_at), and a limiter older than
 * that starts again full. At most max senders are tracked; when all are
 * busy a new sender is not limited (fail open, as DESIGN.md asks of rate
 * counters) and the call says so.
 */
#ifndef BW_LIMITER_H
#define BW_LIMITER_H

#include <stdbool.h>
#include <stddef.h>

#include "rate.h"

typedef enum { BW_LIM_MSG = 0, BW_LIM_RCPT, BW_LIM__N } bw_lim_kind;

typedef enum {
	BW_LIM_OK = 0,       /* admitted */
	BW_LIM_WAIT,         /* over the rate: *retry ms from now */
	BW_LIM_NEVER,        /* more at once than the burst: never admitted */
	BW_LIM_UNTRACKED     /* no room to track the sender: admitted, unlimited */
} bw_lim_result;

typedef struct bw_limiter bw_limiter;

bw_limiter *bw_limiter_new(size_t max_senders);
void bw_limiter_free(bw_limiter *L);

/*
 * Takes n events from sender's limiter of kind k under limit l (already
 * scaled for a throttled sender). reset_at: the sender record's
 * rate_reset_at (0: never). *retry gets the wait in ms for BW_LIM_WAIT.
 */
bw_lim_result bw_limiter_take(bw_limiter *L, const char *sender, bw_lim_kind k,
    const bw_gcra_limit *l, bw_time_ms reset_at, bw_time_ms now, unsigned n, bw_time_ms *retry);

/* Forgets every limiter of sender (bulkwardenctl rate reset reaches the
 * daemon through rate_reset_at instead; this is for tests). */
void bw_limiter_reset(bw_limiter *L, const char *sender);

#endif
