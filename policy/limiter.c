/*
 * limiter.c - the senders' rate limiters in memory (see limiter.h): a
 * chained hash table of sender ids under one mutex; each operation holds
 * it for a few hundred nanoseconds.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "limiter.h"

#define LIM_BUCKETS 4096 /* a power of two */

typedef struct lim_ent {
	struct lim_ent *next;
	int64_t tat[BW_LIM__N];
	bw_time_ms created;    /* a rate_reset_at at or after this starts it again */
	char sender[BW_SENDER_MAX + 1];
} lim_ent;

struct bw_limiter {
	pthread_mutex_t mu;
	size_t n, max;
	lim_ent *b[LIM_BUCKETS];
};

static unsigned
lim_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (LIM_BUCKETS - 1);
}

bw_limiter *
bw_limiter_new(size_t max_senders)
{
	bw_limiter *L = calloc(1, sizeof(*L));

	if (L == NULL)
		return NULL;
	if (pthread_mutex_init(&L->mu, NULL) != 0) {
		free(L);
		return NULL;
	}
	L->max = max_senders ? max_senders : 1;
	return L;
}

void
bw_limiter_free(bw_limiter *L)
{
	if (L == NULL)
		return;
	for (size_t i = 0; i < LIM_BUCKETS; i++)
		while (L->b[i]) {
			lim_ent *e = L->b[i];
			L->b[i] = e->next;
			free(e);
		}
	pthread_mutex_destroy(&L->mu);
	free(L);
}

/* Drops the limiters that are full again (every TAT behind now): they
 * are the same as new ones. */
static void
lim_sweep(bw_limiter *L, bw_time_ms now)
{
	int64_t now_us = now * 1000;

	for (size_t i = 0; i < LIM_BUCKETS; i++)
		for (lim_ent **pp = &L->b[i]; *pp;) {
			lim_ent *e = *pp;
			bool idle = true;
			for (int k = 0; k < BW_LIM__N; k++)
				if (e->tat[k] > now_us)
					idle = false;
			if (idle) {
				*pp = e->next;
				free(e);
				L->n--;
			} else
				pp = &e->next;
		}
}

bw_lim_result
bw_limiter_take(bw_limiter *L, const char *sender, bw_lim_kind k, const bw_gcra_limit *l,
    bw_time_ms reset_at, bw_time_ms now, unsigned n, bw_time_ms *retry)
{
	unsigned h = lim_hash(sender);
	bw_lim_result res;
	bw_time_ms wait = 0;
	lim_ent *e;

	*retry = 0;
	if (strlen(sender) > BW_SENDER_MAX)
		return BW_LIM_UNTRACKED;
	pthread_mutex_lock(&L->mu);
	for (e = L->b[h]; e; e = e->next)
		if (strcmp(e->sender, sender) == 0)
			break;
	if (e != NULL && reset_at >= e->created) {
		/* reset at or after this limiter began: full again, once */
		memset(e->tat, 0, sizeof(e->tat));
		e->created = reset_at + 1;
	}
	if (e == NULL) {
		if (L->n >= L->max)
			lim_sweep(L, now);
		if (L->n >= L->max || (e = calloc(1, sizeof(*e))) == NULL) {
			pthread_mutex_unlock(&L->mu);
			return BW_LIM_UNTRACKED;
		}
		strcpy(e->sender, sender);
		e->created = now > reset_at ? now : reset_at + 1;
		e->next = L->b[h];
		L->b[h] = e;
		L->n++;
	}
	if (bw_gcra_take(l, &e->tat[k], now, n, &wait))
		res = BW_LIM_OK;
	else if (wait < 0)
		res = BW_LIM_NEVER;
	else {
		res = BW_LIM_WAIT;
		*retry = wait;
	}
	pthread_mutex_unlock(&L->mu);
	return res;
}

void
bw_limiter_reset(bw_limiter *L, const char *sender)
{
	unsigned h = lim_hash(sender);

	pthread_mutex_lock(&L->mu);
	for (lim_ent **pp = &L->b[h]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->sender, sender) == 0) {
			lim_ent *e = *pp;
			*pp = e->next;
			free(e);
			L->n--;
			break;
		}
	pthread_mutex_unlock(&L->mu);
}
