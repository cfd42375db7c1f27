/*
 * config.c - the key table, the "Key value" reader, and the policy snapshot.
 *
 * The table below is the only list of keys: the reader, the -n check,
 * "bulkwardenctl config-keys", the sample file and the man page follow it
 * (tests compare them).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "complaint.h"
#include "consent.h"
#include "dns.h"
#include "feedback.h"
#include "log.h"
#include "netaddr.h"
#include "phrases.h"
#include "rules.h"

#define OFF(f) offsetof(bw_conf, f)
#define KB 1024ULL
#define MB (1024ULL * 1024)
#define GB (1024ULL * 1024 * 1024)

const bw_conf_key bw_conf_keys[] = {
	/* name, type, default, min, max, choices, offset, reloadable, help */
	{ "Socket", BW_CK_STRING, "inet:8895@127.0.0.1", 0, 0, NULL, OFF(socket), false,
	  "where the MTA connects: unix:/path or inet:port@host" },
	{ "UserID", BW_CK_STRING, "bulkwarden", 0, 0, NULL, OFF(user_id), false,
	  "user[:group] to run as after binding the socket" },
	{ "PidFile", BW_CK_STRING, "", 0, 0, NULL, OFF(pid_file), false,
	  "file to write the supervisor's process id to (empty: none)" },
	{ "Syslog", BW_CK_BOOL, "yes", 0, 0, NULL, OFF(syslog), false,
	  "log to syslog (no: to standard error)" },
	{ "SyslogFacility", BW_CK_STRING, "mail", 0, 0, NULL, OFF(syslog_facility), false,
	  "syslog facility" },
	{ "LogLevel", BW_CK_ENUM, "info", 0, 0, "err|warning|notice|info|debug", OFF(log_level), true,
	  "least important messages logged" },
	{ "Store", BW_CK_STRING, "lmdb:" BW_LOCALSTATEDIR "/lib/bulkwarden", 0, 0, NULL, OFF(store), false,
	  "the store: lmdb:/directory" },
	{ "MapSize", BW_CK_SIZE, "1G", 1 * MB, 1024 * GB, NULL, OFF(map_size), false,
	  "largest size the LMDB store may grow to" },
	{ "MaxReaders", BW_CK_UINT, "512", 16, 65536, NULL, OFF(max_readers), false,
	  "LMDB reader slots: one per concurrent connection, plus a margin" },
	{ "Mode", BW_CK_ENUM, "enforce", 0, 0, "enforce|monitor", OFF(mode), true,
	  "monitor: refuse nothing, log and add a header with the verdict" },
	{ "InternalHosts", BW_CK_STRING, "127.0.0.1, ::1", 0, 0, NULL, OFF(internal_hosts), true,
	  "clients whose mail is outbound: addresses and CIDR ranges, or a file of them" },
	{ "PolicyFile", BW_CK_STRING, "", 0, 0, NULL, OFF(policy_file), true,
	  "bulk and transactional senders, exempt recipients (empty: none)" },
	{ "PhraseFile", BW_CK_STRING, BW_SYSCONFDIR "/bulkwarden/unsubscribe-phrases", 0, 0, NULL,
	  OFF(phrase_file), true, "unsubscribe phrases, one per line" },
	{ "OnStoreError", BW_CK_ENUM, "tempfail", 0, 0, "tempfail|accept", OFF(on_store_error), true,
	  "what to do with a message when the store fails" },
	{ "OnInternalError", BW_CK_ENUM, "tempfail", 0, 0, "tempfail|accept", OFF(on_internal_error), true,
	  "what to do when bulkwarden itself fails (out of memory, ...)" },
	{ "OnLimit", BW_CK_ENUM, "tempfail", 0, 0, "tempfail|accept|reject", OFF(on_limit), true,
	  "what to do with bulk mail that exceeds a Max* bound" },
	{ "BulkRecipients", BW_CK_UINT, "50", 1, 1000000, NULL, OFF(bulk_recipients), true,
	  "a message to more recipients than this is bulk" },
	{ "RequireBodyLink", BW_CK_BOOL, "yes", 0, 0, NULL, OFF(require_body_link), true,
	  "bulk mail must show a visible unsubscribe link in every body view" },
	{ "RequireListUnsubscribe", BW_CK_BOOL, "no", 0, 0, NULL, OFF(require_list_unsubscribe), true,
	  "bulk mail must carry a valid List-Unsubscribe header (RFC 2369)" },
	{ "RequireOneClick", BW_CK_BOOL, "no", 0, 0, NULL, OFF(require_one_click), true,
	  "bulk mail must offer one-click unsubscribe (RFC 8058)" },
	{ "MinFontSize", BW_CK_UINT, "5", 1, 100, NULL, OFF(min_font_size), true,
	  "text smaller than this many pixels is not visible" },
	{ "VerdictHeader", BW_CK_STRING, "X-Bulkwarden", 0, 0, NULL, OFF(verdict_header), true,
	  "header added to checked mail with the verdict (empty: none)" },
	{ "MaxBodyScan", BW_CK_SIZE, "10M", 1 * KB, 1024 * MB, NULL, OFF(max_body_scan), true,
	  "body bytes scanned" },
	{ "MaxHeaderBytes", BW_CK_SIZE, "64K", 1 * KB, 16 * MB, NULL, OFF(max_header_bytes), true,
	  "bytes of one header block" },
	{ "MaxHeaderLine", BW_CK_SIZE, "16K", 256, 16 * MB, NULL, OFF(max_header_line), true,
	  "bytes of one header" },
	{ "MaxMimeDepth", BW_CK_UINT, "32", 1, 1000, NULL, OFF(max_mime_depth), true,
	  "MIME nesting depth" },
	{ "MaxMimeParts", BW_CK_UINT, "1000", 1, 100000, NULL, OFF(max_mime_parts), true,
	  "MIME parts in one message" },
	{ "MaxHtmlDepth", BW_CK_UINT, "256", 8, 100000, NULL, OFF(max_html_depth), true,
	  "HTML element nesting depth" },
	{ "MaxLinks", BW_CK_UINT, "10000", 1, 1000000, NULL, OFF(max_links), true,
	  "links looked at in one message" },
	{ "MaxCssRules", BW_CK_UINT, "1000", 1, 100000, NULL, OFF(max_css_rules), true,
	  "rules kept from <style> blocks" },
	{ "MaxUrlLength", BW_CK_SIZE, "8K", 256, 1 * MB, NULL, OFF(max_url_length), true,
	  "bytes of one URL" },
	{ "StatsInterval", BW_CK_SECONDS, "10s", 1, 3600, NULL, OFF(stats_interval), true,
	  "how often the message counters are written to the store" },
	{ "RequireConsent", BW_CK_BOOL, "yes", 0, 0, NULL, OFF(require_consent), true,
	  "bulk mail goes only to recipients with a consent record for the sender" },
	{ "ConsentMaxAge", BW_CK_SECONDS, "1825d", 0, 100ULL * 366 * 86400, NULL, OFF(consent_max_age), true,
	  "consent older than this no longer counts (0: no limit)" },
	{ "ConsentMethods", BW_CK_STRING, "double-opt-in, single-opt-in, import, api", 0, 0, NULL,
	  OFF(consent_methods), true, "consent methods that count" },
	{ "ConsentLiftMethods", BW_CK_STRING, "double-opt-in, single-opt-in", 0, 0, NULL,
	  OFF(consent_lift_methods), true,
	  "methods whose consent, given after a suppression, lifts it (empty: none)" },
	{ "ConsentAtEnd", BW_CK_ENUM, "remove", 0, 0, "remove|reject", OFF(consent_at_end), true,
	  "bulk known only at end of message: remove recipients without consent, or reject it" },
	{ "SenderIdentity", BW_CK_STRING, "login-or-domain", 0, 0, NULL, OFF(sender_identity), true,
	  "where the sender id comes from: login, domain, address, header, dkim, in order" },
	{ "SenderIdHeader", BW_CK_STRING, "", 0, 0, NULL, OFF(sender_id_header), true,
	  "SenderIdentity header: the header a trusted upstream puts the sender id in" },
	{ "TrustedUpstreamHosts", BW_CK_STRING, "", 0, 0, NULL, OFF(trusted_upstream_hosts), true,
	  "clients whose SenderIdHeader is believed (addresses and CIDR blocks)" },
	{ "FoldLocalPartCase", BW_CK_BOOL, "no", 0, 0, NULL, OFF(fold_local_case), true,
	  "recipients: compare local parts case-insensitively" },
	{ "FoldPlusTag", BW_CK_BOOL, "no", 0, 0, NULL, OFF(fold_plus_tag), true,
	  "recipients: bob+tag@example.com is bob@example.com" },
	{ "UnsubscribeAddress", BW_CK_STRING, "", 0, 0, NULL, OFF(unsubscribe_address), true,
	  "mail to LOCAL+TOKEN@DOMAIN of this address unsubscribes (empty: off)" },
	{ "TokenKeyFile", BW_CK_STRING, "", 0, 0, NULL, OFF(token_key_file), true,
	  "keys that sign unsubscribe tokens, one \"ID SECRET\" per line, the first signs" },
	{ "TokenMaxAge", BW_CK_SECONDS, "400d", 3600, 100ULL * 366 * 86400, NULL, OFF(token_max_age), true,
	  "an unsubscribe token older than this is refused" },
	{ "ErasureKeyFile", BW_CK_STRING, "", 0, 0, NULL, OFF(erasure_key_file), true,
	  "the key of the hashes erasure keeps (never change it; empty: no erasure)" },
	{ "OneClickListen", BW_CK_STRING, "", 0, 0, NULL, OFF(one_click_listen), false,
	  "address:port of the one-click unsubscribe listener, RFC 8058 (empty: off)" },
	{ "OneClickURL", BW_CK_STRING, "", 0, 0, NULL, OFF(one_click_url), true,
	  "public https URL of the listener; tokens are appended to it" },
	{ "OneClickRate", BW_CK_UINT, "60", 1, 1000000, NULL, OFF(one_click_rate), true,
	  "one-click requests per minute from one client address" },
	{ "AddListUnsubscribe", BW_CK_BOOL, "no", 0, 0, NULL, OFF(add_list_unsubscribe), true,
	  "add List-Unsubscribe and List-Unsubscribe-Post to bulk mail that lacks them" },
	{ "MessageRate", BW_CK_STRING, "0", 0, 0, NULL, OFF(message_rate), true,
	  "messages one sender may send, N/TIME[:BURST] (0: no limit); over it: 451 4.7.1" },
	{ "RecipientRate", BW_CK_STRING, "0", 0, 0, NULL, OFF(recipient_rate), true,
	  "recipients one sender may send to, N/TIME[:BURST] (0: no limit)" },
	{ "ThrottleFactor", BW_CK_STRING, "0.25", 0, 0, NULL, OFF(throttle_factor), true,
	  "the rates of a throttled sender or one in grace are multiplied by this" },
	{ "GracePeriod", BW_CK_SECONDS, "2h", 1, 366ULL * 86400, NULL, OFF(grace_period), true,
	  "time a sender in grace has to stop a batch before it is suspended" },
	{ "ThrottleAt", BW_CK_STRING, "0.1%", 0, 0, NULL, OFF(throttle_at), true,
	  "a complaint rate at or above this throttles the sender" },
	{ "GraceAt", BW_CK_STRING, "0.3%", 0, 0, NULL, OFF(grace_at), true,
	  "a complaint rate at or above this puts the sender in grace" },
	{ "ComplaintWindow", BW_CK_SECONDS, "7d", 3600, 31ULL * 86400, NULL, OFF(complaint_window), true,
	  "the complaint rate is complaints over delivered recipients in this time" },
	{ "ComplaintMinVolume", BW_CK_UINT, "1000", 1, 4000000000U, NULL, OFF(complaint_min_volume), true,
	  "delivered recipients in the window before the complaint rate counts" },
	{ "ComplaintMinRecipients", BW_CK_UINT, "3", 1, 1000000, NULL, OFF(complaint_min_recipients), true,
	  "distinct complaining recipients in the window before the state changes" },
	{ "IncidentDeadline", BW_CK_SECONDS, "24h", 1, 366ULL * 86400, NULL, OFF(incident_deadline), true,
	  "a complaint opens an incident; unacknowledged this long, the sender is suspended" },
	{ "TrustedReporters", BW_CK_STRING, "", 0, 0, NULL, OFF(trusted_reporters), true,
	  "DKIM domains whose signed complaint reports count (subdomains too)" },
	{ "SpfCheck", BW_CK_BOOL, "no", 0, 0, NULL, OFF(spf_check), true,
	  "check SPF for the envelope domain of outbound mail from unauthenticated clients" },
	{ "SpfOnFail", BW_CK_ENUM, "reject", 0, 0, "reject|tempfail|unknown", OFF(spf_on_fail), true,
	  "SPF fail: refuse (550 5.7.23), or go on with no sender id (unknown)" },
	{ "SpfOnError", BW_CK_ENUM, "tempfail", 0, 0, "reject|tempfail|unknown", OFF(spf_on_error), true,
	  "SPF could not be checked (DNS, the helper): 451 4.7.24, or go on with no sender id" },
	{ "SpfTimeout", BW_CK_SECONDS, "5s", 1, 60, NULL, OFF(spf_timeout), false,
	  "time one SPF check may take" },
	{ "SpfZoneFile", BW_CK_STRING, "", 0, 0, NULL, OFF(spf_zone_file), false,
	  "SPF records from a file of \"domain value\" lines instead of DNS (empty: DNS)" },
	{ "SpfNameservers", BW_CK_STRING, "", 0, 0, NULL, OFF(spf_nameservers), false,
	  "IPv4 addresses of the name servers asked for SPF records (empty: the system's)" },
	{ "NotifyCommand", BW_CK_STRING, "", 0, 0, NULL, OFF(notify_command), true,
	  "run with SENDER OLD NEW REASON when a sender's state changes (empty: syslog only)" },
	{ "AddTraceHeader", BW_CK_BOOL, "yes", 0, 0, NULL, OFF(add_trace_header), true,
	  "stamp outbound bulk mail with a signed X-Bulkwarden-Trace token (needs TokenKeyFile)" },
	{ "CFBLAddress", BW_CK_STRING, "", 0, 0, NULL, OFF(cfbl_address), true,
	  "add CFBL-Address and CFBL-Feedback-ID (RFC 9477) with this address (empty: none)" },
	{ "FeedbackID", BW_CK_STRING, "", 0, 0, NULL, OFF(feedback_id), true,
	  "add Feedback-ID: LIST:SENDER:bulk:THIS to outbound bulk mail (empty: none)" },
	{ "ComplaintAddress", BW_CK_STRING, "", 0, 0, NULL, OFF(complaint_address), true,
	  "mail to this address is read as a complaint report, ARF (empty: off)" },
	{ "ReporterNameservers", BW_CK_STRING, "", 0, 0, NULL, OFF(reporter_nameservers), true,
	  "IPv4 addresses of the name servers asked for reporters' DKIM keys (empty: the system's)" },
	{ "ReporterKeyFile", BW_CK_STRING, "", 0, 0, NULL, OFF(reporter_key_file), true,
	  "DKIM keys of the reporters, \"selector._domainkey.domain value\" lines (empty: DNS)" },
	{ "OnSuspended", BW_CK_ENUM, "hold", 0, 0, "hold|reject|tempfail", OFF(on_suspended), true,
	  "mail of a suspended sender: into the MTA's hold queue, refused or deferred" },
	{ "HoldReleaseCommand", BW_CK_STRING, "postsuper -H", 0, 0, NULL, OFF(hold_release_command), true,
	  "bulkwardenctl sender resolve --release runs this with the held queue ids" },
	{ "AutoRestart", BW_CK_BOOL, "yes", 0, 0, NULL, OFF(auto_restart), false,
	  "restart the filter process when it dies" },
	{ "AutoRestartRate", BW_CK_STRING, "10/1h", 0, 0, NULL, OFF(auto_restart_rate), false,
	  "at most this many restarts in this time (n/time), then give up" },
};
const size_t bw_conf_nkeys = sizeof(bw_conf_keys) / sizeof(bw_conf_keys[0]);

/* ---------------------------------------------------------------- errors */

void
bw_errs_add(bw_errs *e, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 8;
		char **nm = realloc(e->msg, nc * sizeof(*nm));
		if (nm == NULL)
			return;
		e->msg = nm;
		e->cap = nc;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) >= 0)
		e->msg[e->n++] = s;
	va_end(ap);
}

void
bw_errs_free(bw_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msg[i]);
	free(e->msg);
	memset(e, 0, sizeof(*e));
}

/* ---------------------------------------------------------------- values */

static bool
conf_parse_uint(const char *s, uint64_t *out, const char *units)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end && units) {
		const char *u = strchr(units, tolower((unsigned char)*end));
		if (u == NULL || end[1] != 0)
			return false;
		switch (*u) {
		case 'k': mul = KB; break;
		case 'm': mul = units[0] == 'k' ? MB : 60; break;
		case 'g': mul = GB; break;
		case 's': mul = 1; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case 'w': mul = 7 * 86400; break;
		case 'y': mul = 365 * 86400; break;
		}
	} else if (*end)
		return false;
	if (mul > 1 && v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

bool
bw_parse_size(const char *s, uint64_t *out)
{
	return conf_parse_uint(s, out, "kmg");
}

bool
bw_parse_seconds(const char *s, uint64_t *out)
{
	return conf_parse_uint(s, out, "smhdwy");
}

bool
bw_parse_rate(const char *s, bw_gcra_limit *l, bool *on, char *err, size_t errlen)
{
	char num[32], per[32], burst[32] = "";
	const char *slash = strchr(s, '/'), *colon;
	uint64_t n, secs, b;
	char why[120];

	memset(l, 0, sizeof(*l));
	*on = false;
	if (strcmp(s, "0") == 0)
		return true;
	colon = slash ? strchr(slash, ':') : NULL;
	if (slash == NULL || (size_t)(slash - s) >= sizeof(num)
	    || (size_t)((colon ? colon : slash + strlen(slash)) - slash - 1) >= sizeof(per)
	    || (colon && strlen(colon + 1) >= sizeof(burst))) {
		snprintf(err, errlen, "\"%.60s\" is not N/TIME or N/TIME:BURST (e.g. 3600/1h:100), "
		    "or 0", s);
		return false;
	}
	memcpy(num, s, (size_t)(slash - s));
	num[slash - s] = 0;
	memcpy(per, slash + 1, (size_t)((colon ? colon : slash + strlen(slash)) - slash - 1));
	per[(colon ? colon : slash + strlen(slash)) - slash - 1] = 0;
	if (colon)
		strcpy(burst, colon + 1);
	if (!conf_parse_uint(num, &n, "") || n == 0 || n > UINT32_MAX
	    || !bw_parse_seconds(per, &secs) || secs == 0
	    || (burst[0] && (!conf_parse_uint(burst, &b, "") || b == 0 || b > BW_GCRA_BURST_MAX))) {
		snprintf(err, errlen, "\"%.60s\" is not N/TIME or N/TIME:BURST (e.g. 3600/1h:100), "
		    "or 0", s);
		return false;
	}
	l->count = (uint32_t)n;
	l->period = (bw_time_ms)secs * 1000;
	l->burst = burst[0] ? (uint32_t)b : (uint32_t)(n < BW_GCRA_BURST_MAX ? n : BW_GCRA_BURST_MAX);
	if (!bw_gcra_limit_check(l, why, sizeof(why))) {
		snprintf(err, errlen, "\"%.60s\": %s", s, why);
		return false;
	}
	*on = true;
	return true;
}

/* "0.25": a factor in (0, 1] */
static bool
conf_parse_factor(const char *s, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end || errno || !(d > 0 && d <= 1))
		return false;
	*out = d;
	return true;
}

static bool
conf_parse_bool(const char *s, bool *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) { *out = true; return true; }
		if (strcasecmp(s, no[i]) == 0) { *out = false; return true; }
	}
	return false;
}

/* index of s in "a|b|c", or -1 */
static int
conf_choice(const char *choices, const char *s)
{
	int idx = 0;
	size_t sl = strlen(s);

	for (const char *p = choices; *p; idx++) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == sl && strncasecmp(p, s, l) == 0)
			return idx;
		if (!bar)
			break;
		p = bar + 1;
	}
	return -1;
}

/* Set one key from text; false with *why set when the value is bad. */
static bool
conf_set(bw_conf *c, const bw_conf_key *k, const char *val, const char **why)
{
	char *field = (char *)c + k->off;
	uint64_t v;
	bool b;
	int idx;

	switch (k->type) {
	case BW_CK_STRING: {
		size_t vl = strlen(val);
		char *d = vl >= 2 && val[0] == '"' && val[vl - 1] == '"' ? strndup(val + 1, vl - 2)
		    : strdup(val);
		if (d == NULL) { *why = "out of memory"; return false; }
		free(*(char **)field);
		*(char **)field = d;
		return true;
	}
	case BW_CK_BOOL:
		if (!conf_parse_bool(val, &b)) { *why = "expected yes or no"; return false; }
		*(bool *)field = b;
		return true;
	case BW_CK_UINT:
		if (!conf_parse_uint(val, &v, NULL)) { *why = "expected a whole number"; return false; }
		break;
	case BW_CK_SIZE:
		if (!bw_parse_size(val, &v)) { *why = "expected a size such as 512K, 10M or 1G"; return false; }
		break;
	case BW_CK_SECONDS:
		if (!bw_parse_seconds(val, &v)) { *why = "expected a time such as 30s, 5m, 1h or 7d"; return false; }
		break;
	case BW_CK_ENUM:
		if ((idx = conf_choice(k->choices, val)) < 0) { *why = "expected one of"; return false; }
		if (k->off == OFF(log_level)) {
			char *d = strdup(val);
			if (d == NULL) { *why = "out of memory"; return false; }
			for (char *p = d; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			free(*(char **)field);
			*(char **)field = d;
		} else
			*(int *)field = idx;
		return true;
	}
	if (v < k->min || (k->max && v > k->max)) {
		*why = "out of range";
		return false;
	}
	if (k->off == OFF(map_size) || k->off == OFF(max_body_scan) || k->off == OFF(max_header_bytes)
	    || k->off == OFF(max_header_line) || k->off == OFF(max_url_length))
		*(uint64_t *)field = v;
	else
		*(unsigned *)field = (unsigned)v;
	return true;
}

static const bw_conf_key *
conf_find(const char *name)
{
	for (size_t i = 0; i < bw_conf_nkeys; i++)
		if (strcasecmp(bw_conf_keys[i].name, name) == 0)
			return &bw_conf_keys[i];
	return NULL;
}

void
bw_conf_defaults(bw_conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < bw_conf_nkeys; i++) {
		const char *why = NULL;
		if (!conf_set(c, &bw_conf_keys[i], bw_conf_keys[i].def, &why))
			bw_log(LOG_CRIT, "config: built-in default of %s is bad: %s",
			    bw_conf_keys[i].name, why);
	}
}

void
bw_conf_free(bw_conf *c)
{
	for (size_t i = 0; i < bw_conf_nkeys; i++)
		if (bw_conf_keys[i].type == BW_CK_STRING || bw_conf_keys[i].off == OFF(log_level)) {
			char **f = (char **)((char *)c + bw_conf_keys[i].off);
			free(*f);
			*f = NULL;
		}
}

/* the closest key name, for "did you mean" */
static const char *
conf_suggest(const char *name)
{
	const char *best = NULL;
	size_t bestd = 4;

	for (size_t i = 0; i < bw_conf_nkeys; i++) {
		const char *k = bw_conf_keys[i].name;
		size_t la = strlen(name), lb = strlen(k), prev[64], cur[64];

		if (la >= 63 || lb >= 63)
			continue;
		for (size_t j = 0; j <= lb; j++)
			prev[j] = j;
		for (size_t a = 1; a <= la; a++) {
			cur[0] = a;
			for (size_t b = 1; b <= lb; b++) {
				size_t cost = tolower((unsigned char)name[a - 1]) != tolower((unsigned char)k[b - 1]);
				size_t m = prev[b] + 1;
				if (cur[b - 1] + 1 < m) m = cur[b - 1] + 1;
				if (prev[b - 1] + cost < m) m = prev[b - 1] + cost;
				cur[b] = m;
			}
			memcpy(prev, cur, (lb + 1) * sizeof(size_t));
		}
		if (prev[lb] < bestd) {
			bestd = prev[lb];
			best = k;
		}
	}
	return best;
}

bool
bw_conf_read(bw_conf *c, const char *path, bw_errs *errs)
{
	FILE *fp = fopen(path, "r");
	char line[8192];
	unsigned lineno = 0, seen_at[sizeof(bw_conf_keys) / sizeof(bw_conf_keys[0])] = { 0 };
	size_t nerr = errs->n;

	if (fp == NULL) {
		bw_errs_add(errs, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	while (fgets(line, sizeof(line), fp)) {
		char *p = line, *name, *val, *end;
		const bw_conf_key *k;
		const char *why = NULL;
		bw_dns_servers ns;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			int ch;
			bw_errs_add(errs, "%s:%u: line too long (more than %zu bytes)", path, lineno,
			    sizeof(line) - 2);
			while ((ch = fgetc(fp)) != EOF && ch != '\n')
				;
			continue;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p == 0 || *p == '#')
			continue;
		name = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = 0;
		while (isspace((unsigned char)*p))
			p++;
		val = p;
		/* a value ends at a " #" comment or the line end */
		for (end = val; *end; end++)
			if (*end == '#' && (end == val || isspace((unsigned char)end[-1])))
				break;
		*end = 0;
		while (end > val && isspace((unsigned char)end[-1]))
			*--end = 0;
		if ((k = conf_find(name)) == NULL) {
			const char *s = conf_suggest(name);
			if (s)
				bw_errs_add(errs, "%s:%u: unknown key \"%.60s\" (did you mean %s?)",
				    path, lineno, name, s);
			else
				bw_errs_add(errs, "%s:%u: unknown key \"%.60s\"", path, lineno, name);
			continue;
		}
		size_t ki = (size_t)(k - bw_conf_keys);
		if (seen_at[ki]) {
			bw_errs_add(errs, "%s:%u: %s given again (first at line %u)", path, lineno,
			    k->name, seen_at[ki]);
			continue;
		}
		seen_at[ki] = lineno;
		if (*val == 0 && k->type != BW_CK_STRING) {
			bw_errs_add(errs, "%s:%u: %s needs a value", path, lineno, k->name);
			continue;
		}
		if (!conf_set(c, k, val, &why)) {
			if (k->type == BW_CK_ENUM)
				bw_errs_add(errs, "%s:%u: %s: bad value \"%.60s\": expected one of %s",
				    path, lineno, k->name, val, k->choices);
			else if (strcmp(why, "out of range") == 0)
				bw_errs_add(errs, "%s:%u: %s: %.60s is out of range (%llu to %llu)",
				    path, lineno, k->name, val, (unsigned long long)k->min,
				    (unsigned long long)k->max);
			else
				bw_errs_add(errs, "%s:%u: %s: bad value \"%.60s\": %s", path, lineno,
				    k->name, val, why);
		} else if (k->off == OFF(socket) && strncmp(val, "unix:", 5) != 0
		    && strncmp(val, "local:", 6) != 0 && strncmp(val, "inet:", 5) != 0
		    && strncmp(val, "inet6:", 6) != 0 && val[0] != '/') {
			bw_errs_add(errs, "%s:%u: Socket: \"%.100s\" is not unix:/path or inet:port@host",
			    path, lineno, val);
		} else if (k->off == OFF(store) && strncmp(val, "lmdb:/", 6) != 0
		    && strncmp(val, "redis:", 6) != 0) {
			bw_errs_add(errs, "%s:%u: Store: \"%.100s\" is not lmdb:/directory or redis:...",
			    path, lineno, val);
		} else if (k->off == OFF(syslog_facility) && bw_log_facility(val) < 0) {
			bw_errs_add(errs, "%s:%u: SyslogFacility: unknown facility \"%.60s\"", path,
			    lineno, val);
		} else if (k->off == OFF(message_rate) || k->off == OFF(recipient_rate)) {
			bw_gcra_limit l;
			bool on;
			char rwhy[200];
			if (!bw_parse_rate(val, &l, &on, rwhy, sizeof(rwhy)))
				bw_errs_add(errs, "%s:%u: %s: %s", path, lineno, k->name, rwhy);
		} else if (k->off == OFF(throttle_factor)) {
			double d;
			if (!conf_parse_factor(val, &d))
				bw_errs_add(errs, "%s:%u: ThrottleFactor: \"%.60s\" is not a number above 0 "
				    "and at most 1", path, lineno, val);
		} else if ((k->off == OFF(spf_nameservers) || k->off == OFF(reporter_nameservers))
		    && (*(char *const *)((const char *)c + k->off))[0]
		    && !bw_dns_servers_parse(*(char *const *)((const char *)c + k->off), &ns)) {
			bw_errs_add(errs, "%s:%u: %s: \"%.100s\": want IPv4 addresses, separated "
			    "by commas (at most %d)", path, lineno, k->name, val, BW_DNS_MAXNS);
		} else if (k->off == OFF(auto_restart_rate)) {
			unsigned n;
			char unit[32];
			uint64_t secs;
			if (sscanf(val, "%u/%31s", &n, unit) != 2 || n == 0 || !bw_parse_seconds(unit, &secs)
			    || secs == 0)
				bw_errs_add(errs, "%s:%u: AutoRestartRate: \"%.60s\" is not n/time (e.g. 10/1h)",
				    path, lineno, val);
		}
	}
	if (ferror(fp))
		bw_errs_add(errs, "%s: read error: %s", path, strerror(errno));
	fclose(fp);
	return errs->n == nerr;
}

void
bw_conf_diff_unreloadable(const bw_conf *old, const bw_conf *nw, bw_errs *errs)
{
	for (size_t i = 0; i < bw_conf_nkeys; i++) {
		const bw_conf_key *k = &bw_conf_keys[i];
		const char *a = (const char *)old + k->off, *b = (const char *)nw + k->off;
		bool same;

		if (k->reloadable)
			continue;
		switch (k->type) {
		case BW_CK_STRING:
			same = strcmp(*(char *const *)a, *(char *const *)b) == 0;
			break;
		case BW_CK_BOOL:
			same = *(const bool *)a == *(const bool *)b;
			break;
		case BW_CK_SIZE:
			same = *(const uint64_t *)a == *(const uint64_t *)b;
			break;
		default:
			same = *(const unsigned *)a == *(const unsigned *)b;
			break;
		}
		if (!same)
			bw_errs_add(errs, "%s changed: restart required (the old value stays in force)",
			    k->name);
	}
}

/* ---------------------------------------------------------------- snapshot */

static atomic_uint_fast64_t policy_generation;

/* A header field name (RFC 5322 2.2: printable ASCII but ':'). */
static bool
header_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 76)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ':')
			return false;
	return true;
}

/* SenderIdentity, SenderIdHeader, TrustedUpstreamHosts. */
static void
policy_load_identity(bw_policy *p, const char *conf_path, bw_errs *errs)
{
	const bw_conf *c = &p->conf;
	char err[300], where[600];
	bool hdr;

	if (!bw_sid_order_parse(c->sender_identity, &p->sid, err, sizeof(err)))
		bw_errs_add(errs, "%s: SenderIdentity \"%.100s\": %s", conf_path, c->sender_identity, err);
	hdr = bw_sid_order_has(&p->sid, BW_SID_HEADER);
	if (hdr && !header_name_ok(c->sender_id_header))
		bw_errs_add(errs, "%s: SenderIdentity header needs SenderIdHeader, a header name (\"%.100s\" "
		    "is not one)", conf_path, c->sender_id_header);
	if (hdr && c->trusted_upstream_hosts[0] == 0)
		bw_errs_add(errs, "%s: SenderIdentity header needs TrustedUpstreamHosts: no client would be "
		    "believed", conf_path);
	if (strpbrk(c->feedback_id, ": \t") || strlen(c->feedback_id) > 100)
		bw_errs_add(errs, "%s: FeedbackID \"%.100s\": want one word without colons, up to 100 "
		    "characters", conf_path, c->feedback_id);
	if (c->trusted_upstream_hosts[0]) {
		snprintf(where, sizeof(where), "%s: TrustedUpstreamHosts", conf_path);
		p->upstream = bw_netlist_parse(c->trusted_upstream_hosts, where, errs);
	}
}

/* The consent and unsubscribe keys: method lists, key files, and the keys
 * that only make sense together. */
static void
policy_load_consent(bw_policy *p, const char *conf_path, bw_errs *errs)
{
	const bw_conf *c = &p->conf;
	char err[300];
	bool need_tokens = c->unsubscribe_address[0] || c->one_click_listen[0] || c->add_list_unsubscribe;

	if (!bw_consent_methods_parse(c->consent_methods, &p->consent_methods, err, sizeof(err)))
		bw_errs_add(errs, "%s: ConsentMethods: %s", conf_path, err);
	if (!bw_consent_methods_parse(c->consent_lift_methods, &p->consent_lift, err, sizeof(err)))
		bw_errs_add(errs, "%s: ConsentLiftMethods: %s", conf_path, err);
	if (c->token_key_file[0]) {
		if ((p->token_keys = bw_keyring_load(c->token_key_file, err, sizeof(err))) == NULL)
			bw_errs_add(errs, "%s", err);
	} else if (need_tokens)
		bw_errs_add(errs, "%s: TokenKeyFile is empty: UnsubscribeAddress, OneClickListen and "
		    "AddListUnsubscribe need it", conf_path);
	if (c->erasure_key_file[0]
	    && (p->erasure_key = bw_keyring_load(c->erasure_key_file, err, sizeof(err))) == NULL)
		bw_errs_add(errs, "%s", err);
	if (c->unsubscribe_address[0]) {
		const char *at = strchr(c->unsubscribe_address, '@');
		if (at == NULL || at == c->unsubscribe_address || at[1] == 0 || strchr(at + 1, '@')
		    || strchr(c->unsubscribe_address, '+') || strpbrk(c->unsubscribe_address, " <>\"\t"))
			bw_errs_add(errs, "%s: UnsubscribeAddress \"%s\": want local@domain, without a +tag",
			    conf_path, c->unsubscribe_address);
	}
	if (c->one_click_url[0] && strncmp(c->one_click_url, "https://", 8) != 0)
		bw_errs_add(errs, "%s: OneClickURL \"%s\": must be an https URL (RFC 8058)", conf_path,
		    c->one_click_url);
	if (c->add_list_unsubscribe && c->one_click_url[0] == 0 && c->unsubscribe_address[0] == 0)
		bw_errs_add(errs, "%s: AddListUnsubscribe needs OneClickURL or UnsubscribeAddress", conf_path);
}

/* TrustedReporters, ReporterKeyFile and ComplaintAddress: the verifier of
 * complaint reports. */
static void
policy_load_reporters(bw_policy *p, const char *conf_path, bw_errs *errs)
{
	const bw_conf *c = &p->conf;
	bw_arf_verifier_opts vo = { .query = c->reporter_key_file[0] ? BW_ARF_QUERY_FILE
	    : BW_ARF_QUERY_DNS, .query_info = c->reporter_key_file[0] ? c->reporter_key_file : NULL,
	    .nameservers = c->reporter_nameservers };
	char err[300], *save = NULL;
	bw_dns_servers ns;

	if ((p->trusted_buf = strdup(c->trusted_reporters)) == NULL) {
		bw_errs_add(errs, "out of memory");
		return;
	}
	for (char *w = strtok_r(p->trusted_buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (p->ntrusted == sizeof(p->trusted) / sizeof(p->trusted[0])) {
			bw_errs_add(errs, "%s: TrustedReporters: more than %zu domains", conf_path,
			    sizeof(p->trusted) / sizeof(p->trusted[0]));
			return;
		}
		p->trusted[p->ntrusted++] = w;
	}
	if (c->complaint_address[0]) {
		const char *at = strchr(c->complaint_address, '@');
		if (at == NULL || at == c->complaint_address || at[1] == 0 || strchr(at + 1, '@')
		    || strpbrk(c->complaint_address, " <>\"\t"))
			bw_errs_add(errs, "%s: ComplaintAddress \"%s\": want local@domain", conf_path,
			    c->complaint_address);
		if (p->ntrusted == 0)
			bw_errs_add(errs, "%s: ComplaintAddress needs TrustedReporters: no report would count",
			    conf_path);
	}
	if (c->reporter_key_file[0] && access(c->reporter_key_file, R_OK) != 0)
		bw_errs_add(errs, "%s: ReporterKeyFile %s: %s", conf_path, c->reporter_key_file,
		    strerror(errno));
	/* bad name servers were told with their line as the file was read */
	if (c->reporter_nameservers[0] && !bw_dns_servers_parse(c->reporter_nameservers, &ns))
		return;
	/* the same verifier checks a message's own signatures (SenderIdentity dkim) */
	if ((p->ntrusted || bw_sid_order_has(&p->sid, BW_SID_DKIM))
	    && (p->arf = bw_arf_verifier_new(&vo, err, sizeof(err))) == NULL)
		bw_errs_add(errs, "%s: %s: %s", conf_path, p->ntrusted ? "TrustedReporters" : "SenderIdentity dkim",
		    err);
}

/* Rates and sender states; the values were checked as the file was read. */
static void
policy_load_rates(bw_policy *p, const char *conf_path, bw_errs *errs)
{
	const bw_conf *c = &p->conf;
	char err[200];

	if (!bw_parse_rate(c->message_rate, &p->msg_rate, &p->msg_rate_on, err, sizeof(err)))
		bw_errs_add(errs, "%s: MessageRate: %s", conf_path, err);
	if (!bw_parse_rate(c->recipient_rate, &p->rcpt_rate, &p->rcpt_rate_on, err, sizeof(err)))
		bw_errs_add(errs, "%s: RecipientRate: %s", conf_path, err);
	bw_sender_policy_default(&p->sender);
	if (!conf_parse_factor(c->throttle_factor, &p->sender.throttle_factor))
		bw_errs_add(errs, "%s: ThrottleFactor: \"%s\" is not a number above 0 and at most 1",
		    conf_path, c->throttle_factor);
	p->sender.grace_period = (bw_time_ms)c->grace_period * 1000;
	if (!bw_parse_percent_ppm(c->throttle_at, &p->sender.throttle_ppm) || p->sender.throttle_ppm == 0)
		bw_errs_add(errs, "%s: ThrottleAt: \"%s\" is not a percentage above 0 (e.g. 0.1%%)",
		    conf_path, c->throttle_at);
	if (!bw_parse_percent_ppm(c->grace_at, &p->sender.grace_ppm) || p->sender.grace_ppm == 0)
		bw_errs_add(errs, "%s: GraceAt: \"%s\" is not a percentage above 0 (e.g. 0.3%%)",
		    conf_path, c->grace_at);
	p->sender.window_hours = (unsigned)(c->complaint_window / 3600);
	p->sender.min_volume = c->complaint_min_volume;
	p->sender.min_complainers = c->complaint_min_recipients;
	p->sender.incident_deadline = (bw_time_ms)c->incident_deadline * 1000;
	policy_load_identity(p, conf_path, errs);
	policy_load_reporters(p, conf_path, errs);
	if (!bw_sender_policy_check(&p->sender, err, sizeof(err)))
		bw_errs_add(errs, "%s: %s", conf_path, err);
}

bw_policy *
bw_policy_load(const char *conf_path, bw_errs *errs)
{
	bw_policy *p = calloc(1, sizeof(*p));
	size_t nerr = errs->n;
	char where[600];

	if (p == NULL) {
		bw_errs_add(errs, "out of memory");
		return NULL;
	}
	p->refs = 1;
	bw_conf_defaults(&p->conf);
	if ((p->conf_path = strdup(conf_path)) == NULL)
		goto fail;
	/* with errors in the file, still check the files it names: report everything */
	if (!bw_conf_read(&p->conf, conf_path, errs) && access(conf_path, R_OK) != 0)
		goto fail;
	snprintf(where, sizeof(where), "%s: InternalHosts", conf_path);
	p->internal = bw_netlist_parse(p->conf.internal_hosts, where, errs);
	p->rules = bw_rules_load(p->conf.policy_file, errs);
	if (p->conf.phrase_file[0] == 0)
		bw_errs_add(errs, "%s: PhraseFile is empty: the unsubscribe phrases are required", conf_path);
	else
		p->phrases = bw_phrases_load(p->conf.phrase_file, errs);
	policy_load_consent(p, conf_path, errs);
	policy_load_rates(p, conf_path, errs);
	if (errs->n != nerr)
		goto fail;
	p->generation = atomic_fetch_add(&policy_generation, 1) + 1;
	return p;
fail:
	p->refs = 1;
	bw_policy_unref(p);
	return NULL;
}

bw_policy *
bw_policy_ref(bw_policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
	return p;
}

void
bw_policy_unref(bw_policy *p)
{
	if (p == NULL || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	bw_netlist_free(p->internal);
	bw_netlist_free(p->upstream);
	bw_rules_free(p->rules);
	bw_phrases_free(p->phrases);
	bw_keyring_free(p->token_keys);
	bw_keyring_free(p->erasure_key);
	bw_arf_verifier_free(p->arf);
	free(p->trusted_buf);
	bw_conf_free(&p->conf);
	free(p->conf_path);
	free(p);
}
