/*
 * rules.h - the policy file: who is a bulk sender, who is transactional,
 * which recipients are exempt.
 *
 *   # directive   pattern
 *   bulk-sender           news@example.com
 *   bulk-sender           @lists.example.com      (a whole domain)
 *   bulk-sender           auth:campaigns          (a SASL login)
 *   transactional-sender  receipts@example.com
 *   exempt-recipient      abuse@example.net
 *   sender-class  b2b  consent-max-age=3y consent-methods=double-opt-in,import
 *   bulk-sender           @partner.example.com  class=b2b
 *   sender                auth:acme  class=b2b  (a class, not declared bulk)
 *
 * A sender class overrides RequireConsent, ConsentMaxAge, ConsentMethods,
 * ConsentLiftMethods, MessageRate and RecipientRate for the senders that
 * name it (require-consent=, consent-max-age=, consent-methods=,
 * consent-lift-methods=, message-rate=, recipient-rate=). The first
 * rule with a class that matches the sender gives it.
 *
 * Addresses compare case-insensitively. A pattern "@.example.com" also
 * matches every subdomain.
 */
#ifndef BW_RULES_H
#define BW_RULES_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"

typedef struct bw_rules bw_rules;

typedef enum { BW_SENDER_UNKNOWN = 0, BW_SENDER_BULK, BW_SENDER_TRANSACTIONAL } bw_sender_class;

/* A sender class's settings; -1 = the config file's value. */
typedef struct bw_class_policy {
	char *name;
	int require_consent;
	int64_t consent_max_age;
	int64_t methods;         /* mask of bw_consent_method */
	int64_t lift;
	int msg_rate_set, rcpt_rate_set; /* -1: the config's; 0: no limit; 1: the one below */
	bw_gcra_limit msg_rate, rcpt_rate;
} bw_class_policy;

/* path NULL or "": an empty rule set. NULL with errs on error. */
bw_rules *bw_rules_load(const char *path, bw_errs *errs);
void bw_rules_free(bw_rules *r);
/* from: envelope sender (no brackets); auth: SASL login or NULL */
bw_sender_class bw_rules_sender(const bw_rules *r, const char *from, const char *auth);
bool bw_rules_exempt_rcpt(const bw_rules *r, const char *rcpt);
size_t bw_rules_count(const bw_rules *r);
/* The class of a sender, or NULL. */
const bw_class_policy *bw_rules_class(const bw_rules *r, const char *from, const char *auth);

#endif
