/*
 * pool.h - a last-in, first-out pool of freed objects, shared by threads.
 *
 * libmilter runs each connection in its own thread. Per-message objects of
 * tens of kilobytes that each thread kept for itself (or that malloc's
 * per-thread arenas handed back) had gone cold in the caches while the
 * other threads ran. From a shared pool, the object taken is the one given
 * back last: whichever thread used it, it is the most likely to be warm.
 */
#ifndef BW_POOL_H
#define BW_POOL_H

#include <pthread.h>
#include <stddef.h>

#define BW_POOL_MAX 16

typedef struct bw_pool {
	pthread_mutex_t mu;
	unsigned n;
	void *v[BW_POOL_MAX];
} bw_pool;

#define BW_POOL_INIT { PTHREAD_MUTEX_INITIALIZER, 0, { NULL } }

/* the object given back last, or NULL when the pool is empty */
static inline void *
bw_pool_take(bw_pool *p)
{
	void *x;

	pthread_mutex_lock(&p->mu);
	x = p->n > 0 ? p->v[--p->n] : NULL;
	pthread_mutex_unlock(&p->mu);
	return x;
}

/* keeps x; returns NULL, or x itself when the pool is full (to be freed) */
static inline void *
bw_pool_give(bw_pool *p, void *x)
{
	pthread_mutex_lock(&p->mu);
	if (p->n < BW_POOL_MAX) {
		p->v[p->n++] = x;
		x = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	return x;
}

#endif
