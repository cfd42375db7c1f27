/*
 * callbacks.h - the libmilter callbacks and the policy snapshot they use.
 */
#ifndef BW_CALLBACKS_H
#define BW_CALLBACKS_H

#include <libmilter/mfapi.h>

#include "config.h"
#include "store.h"

extern struct smfiDesc bw_milter_desc;

/* The snapshot new messages use; the caller's reference is taken over. */
void cb_set_policy(bw_policy *p);
/* A new reference to the current snapshot. */
bw_policy *cb_policy(void);
void cb_set_store(bw_store *st);
/* The store, or NULL while it is not open. */
bw_store *cb_get_store(void);
/* Messages between MAIL FROM and their end, right now. */
long cb_inflight(void);
/* From now on new messages are told to come back later (the filter is stopping). */
void cb_set_draining(void);

#endif
