/*
 * config.h - the configuration table and the policy snapshot.
 *
 * One table (config.c) lists every key of bulkwarden.conf with its type,
 * default, bounds and whether a reload can change it. The loader, the -n
 * check, "bulkwardenctl config-keys" (which the tests compare with
 * conf/bulkwarden.conf and the man page) are all driven by it.
 *
 * Everything derived from the config and policy files lives in one
 * immutable, refcounted bw_policy; a reload builds a new one and swaps it,
 * messages in flight keep theirs.
 */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rate.h"

/* ---- error lists: every problem, as "file:line: what" ---- */
typedef struct bw_errs {
	char **msg;
	size_t n, cap;
} bw_errs;
void bw_errs_add(bw_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bw_errs_free(bw_errs *e);

typedef enum { BW_MODE_ENFORCE = 0, BW_MODE_MONITOR } bw_mode;
/* ConsentAtEnd: recipients found without consent only at end of message */
typedef enum { BW_AT_END_REMOVE = 0, BW_AT_END_REJECT } bw_at_end;
/* SenderIdentity: the sources of the sender id, in order (consent.h) */
typedef enum {
	BW_SID_LOGIN = 0, BW_SID_DOMAIN, BW_SID_ADDRESS, BW_SID_HEADER, BW_SID_DKIM, BW_SID__N
} bw_sid_source;
typedef struct bw_sid_order {
	unsigned char src[BW_SID__N]; /* bw_sid_source, each at most once */
	unsigned n;
} bw_sid_order;
/* SpfOnFail, SpfOnError */
typedef enum { BW_SPFA_REJECT = 0, BW_SPFA_TEMPFAIL, BW_SPFA_UNKNOWN } bw_spf_action;
/* OnSuspended: mail of a suspended sender */
typedef enum { BW_SUSP_HOLD = 0, BW_SUSP_REJECT, BW_SUSP_TEMPFAIL } bw_on_suspended;
/* what to do when a failure class happens */
typedef enum { BW_ON_TEMPFAIL = 0, BW_ON_ACCEPT, BW_ON_REJECT } bw_onerr;

typedef struct bw_conf {
	char *socket;
	char *user_id;
	char *pid_file;
	bool syslog;
	char *syslog_facility;
	char *log_level;
	char *store;
	uint64_t map_size;
	unsigned max_readers;
	int mode;                 /* bw_mode */
	char *internal_hosts;
	char *policy_file;
	char *phrase_file;
	int on_store_error;       /* bw_onerr */
	int on_internal_error;    /* bw_onerr */
	int on_limit;             /* bw_onerr */
	unsigned bulk_recipients;
	bool require_body_link;
	bool require_list_unsubscribe;
	bool require_one_click;
	unsigned min_font_size;
	char *verdict_header;
	uint64_t max_body_scan;
	uint64_t max_header_bytes;
	uint64_t max_header_line;
	unsigned max_mime_depth;
	unsigned max_mime_parts;
	unsigned max_html_depth;
	unsigned max_links;
	unsigned max_css_rules;
	uint64_t max_url_length;
	unsigned stats_interval;  /* seconds */
	/* consent and unsubscribe (consent.h, optout.h) */
	bool require_consent;
	uint64_t consent_max_age; /* seconds; 0 = no limit */
	char *consent_methods;
	char *consent_lift_methods;
	int consent_at_end;       /* bw_at_end */
	char *sender_identity;    /* "login-or-domain"; parsed into bw_policy.sid */
	char *sender_id_header;   /* SenderIdentity header: the header's name */
	char *trusted_upstream_hosts; /* clients whose SenderIdHeader is believed */
	bool fold_local_case;
	bool fold_plus_tag;
	char *unsubscribe_address;
	char *token_key_file;
	uint64_t token_max_age;   /* seconds */
	char *erasure_key_file;
	char *one_click_listen;
	char *one_click_url;
	unsigned one_click_rate;  /* requests per minute per client address */
	bool add_list_unsubscribe;
	/* rates and sender states (rate.h, sender.h) */
	char *message_rate;       /* "N/TIME[:BURST]" or "0" */
	char *recipient_rate;
	char *throttle_factor;
	uint64_t grace_period;    /* seconds */
	char *throttle_at;        /* complaint rates, "0.1%" */
	char *grace_at;
	uint64_t complaint_window; /* seconds */
	unsigned complaint_min_volume;
	unsigned complaint_min_recipients;
	uint64_t incident_deadline; /* seconds */
	char *trusted_reporters;  /* DKIM d= domains of the reports that count */
	char *complaint_address;  /* mail to it is read as a complaint report */
	bool add_trace_header;    /* stamp outbound bulk mail with a signed trace token */
	char *notify_command;     /* run on a sender's state change */
	bool spf_check;           /* SPF of the envelope domain of unauthenticated outbound mail */
	int spf_on_fail;          /* bw_spf_action */
	int spf_on_error;         /* bw_spf_action */
	unsigned spf_timeout;     /* seconds */
	char *spf_zone_file;      /* "": DNS */
	char *spf_nameservers;    /* "": the system's resolver */
	char *cfbl_address;       /* CFBL-Address of outbound bulk mail (RFC 9477) */
	char *feedback_id;        /* Feedback-ID's last field (the sender of the mail system) */
	char *reporter_key_file;  /* "": keys from DNS */
	char *reporter_nameservers; /* "": the system's */
	int on_suspended;         /* bw_on_suspended */
	char *hold_release_command;
	bool auto_restart;
	char *auto_restart_rate;
} bw_conf;

typedef enum { BW_CK_STRING, BW_CK_BOOL, BW_CK_UINT, BW_CK_SIZE, BW_CK_SECONDS, BW_CK_ENUM } bw_ck_type;

typedef struct bw_conf_key {
	const char *name;
	bw_ck_type type;
	const char *def;       /* default, as written in the file */
	uint64_t min, max;     /* numeric bounds */
	const char *choices;   /* BW_CK_ENUM: "enforce|monitor" */
	size_t off;            /* offset in bw_conf */
	bool reloadable;       /* false: a change needs a restart */
	const char *help;      /* one line for the sample file and man page */
} bw_conf_key;

extern const bw_conf_key bw_conf_keys[];
extern const size_t bw_conf_nkeys;

/* Defaults for every key. */
void bw_conf_defaults(bw_conf *c);
/* Read "Key value" lines; unknown keys, bad values and duplicates go to errs
 * as file:line. Returns true when errs got nothing. */
bool bw_conf_read(bw_conf *c, const char *path, bw_errs *errs);
void bw_conf_free(bw_conf *c);
/* Keys that differ and cannot be reloaded, named in errs ("restart required"). */
void bw_conf_diff_unreloadable(const bw_conf *old, const bw_conf *nw, bw_errs *errs);
/* A rate "N/TIME" or "N/TIME:BURST" (burst default N): *on false for "0"
 * (no limit). False with a sentence in err when malformed. */
struct bw_gcra_limit;
bool bw_parse_rate(const char *s, struct bw_gcra_limit *l, bool *on, char *err, size_t errlen);
/* Parse "10M", "64K", "1G"; "1h", "30s", "7d". false when malformed. */
bool bw_parse_size(const char *s, uint64_t *out);
bool bw_parse_seconds(const char *s, uint64_t *out);

struct bw_netlist;
struct bw_phrases;
struct bw_rules;
struct bw_keyring;

typedef struct bw_policy {
	int refs;                    /* atomic */
	bw_conf conf;
	char *conf_path;
	struct bw_netlist *internal; /* InternalHosts */
	struct bw_netlist *upstream; /* TrustedUpstreamHosts, or NULL */
	bw_sid_order sid;            /* SenderIdentity */
	struct bw_phrases *phrases;  /* PhraseFile */
	struct bw_rules *rules;      /* PolicyFile */
	struct bw_keyring *token_keys;   /* TokenKeyFile, or NULL */
	struct bw_keyring *erasure_key;  /* ErasureKeyFile, or NULL */
	unsigned consent_methods;        /* ConsentMethods as a mask */
	unsigned consent_lift;           /* ConsentLiftMethods as a mask */
	struct bw_gcra_limit msg_rate, rcpt_rate; /* MessageRate, RecipientRate */
	bool msg_rate_on, rcpt_rate_on;
	struct bw_sender_policy sender;  /* ThrottleAt, GraceAt, ThrottleFactor, ... */
	struct bw_arf_verifier *arf;     /* DKIM verifier of complaint reports, or NULL */
	char *trusted_buf;               /* TrustedReporters split into ... */
	const char *trusted[64];         /* ... these domains */
	size_t ntrusted;
	uint64_t generation;         /* increases on every load */
} bw_policy;

/* Load the config file and every file it names. NULL with errs filled when
 * anything is wrong: nothing partial is ever used. */
bw_policy *bw_policy_load(const char *conf_path, bw_errs *errs);
bw_policy *bw_policy_ref(bw_policy *p);
void bw_policy_unref(bw_policy *p);

#endif
