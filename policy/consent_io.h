/*
 * consent_io.h - consent and suppression records in and out of files:
 * reading an import stream (CSV with a header row, or JSON lines), checking
 * each row into a bw_consent / bw_suppression, writing the good rows to the
 * store in sorted, all-or-nothing batches, and writing records back out in
 * the same two formats (export, "bulkwardenctl ... show").
 *
 * The formats. CSV (RFC 4180: comma separated, '"' quoting with '""' for a
 * quote, quoted fields may hold commas and line breaks; LF or CRLF line
 * ends; a UTF-8 byte-order mark is skipped) whose first row names the
 * columns, in any order; or JSON lines, one object per line with the same
 * names as members (string values, null for absent). Columns:
 *   consent:     sender, recipient, granted_at, method, source, evidence
 *                (these must be there), source_ip, confirmed_at, confirm_ip,
 *                text, expires_at, withdrawn_at, recorded_at;
 *   suppression: sender, recipient, reason, at (these must be there),
 *                source, note.
 * An unknown column is an error naming it. Times are RFC 3339; an empty
 * field is an absent one. The recipient is normalised with the policy's
 * fold options ("*@domain" allowed in consent; "#" and 64 hex digits, an
 * erased address, in a suppression).
 *
 * Input is streamed: memory is bounded by one record (BW_IO_RECORD_MAX) and
 * one batch of rows being sorted. Nothing here logs or exits; every problem
 * is a sentence with the input line number ("line 17: granted_at: not an
 * RFC 3339 time").
 */
#ifndef BW_CONSENT_IO_H
#define BW_CONSENT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "consent.h"
#include "store.h"

#define BW_IO_RECORD_MAX   65536  /* bytes of field data in one input record */
#define BW_IO_BATCH_DEF    100000 /* rows written in one transaction */
#define BW_IO_BATCH_MAX    10000000
#define BW_IO_FUTURE_SKEW  86400  /* a time may be this far in the future (clock skew) */

typedef enum { BW_IO_CONSENT = 0, BW_IO_SUPPRESS } bw_io_kind;
typedef enum { BW_IO_AUTO = 0, BW_IO_CSV, BW_IO_JSONL } bw_io_format;

/* "csv", "jsonl" ("json" too) -> the format; false when unknown. */
bool bw_io_format_parse(const char *s, bw_io_format *f);
const char *bw_io_format_name(bw_io_format f);
const char *bw_io_kind_name(bw_io_kind k); /* "consent", "suppression" */

/* ---- one record from named fields (import rows and the command line) ----
 * names[i] = values[i]; NULL or "" values are absent. now fills recorded_at
 * when absent (consent) and bounds times in the future. On false, err says
 * which field and why ("granted_at: not an RFC 3339 time (\"yesterday\")"),
 * *c / *s are left cleared. */
bool bw_io_consent_from_fields(const char *const *names, const char *const *values, size_t n,
    const bw_norm_opts *norm, int64_t now, bw_consent *c, char *err, size_t errlen);
bool bw_io_suppression_from_fields(const char *const *names, const char *const *values,
    size_t n, const bw_norm_opts *norm, int64_t now, bw_suppression *s, char *err,
    size_t errlen);

/* ---- reading ---- */
/* Like read(2): bytes into buf, 0 at the end, -1 on an error (errno set). */
typedef ssize_t (*bw_io_read_fn)(void *ud, char *buf, size_t len);

typedef struct bw_import bw_import;

/* fmt BW_IO_AUTO: JSON lines when the first non-blank character is '{',
 * else CSV. NULL only when out of memory. */
bw_import *bw_import_new(bw_io_kind kind, bw_io_format fmt, const bw_norm_opts *norm,
    int64_t now, bw_io_read_fn rd, void *ud);
void bw_import_free(bw_import *im);
/* The format in use (known after the first bw_import_next). */
bw_io_format bw_import_format(const bw_import *im);

typedef enum {
	BW_IMPORT_ROW = 0, /* a good row in *row */
	BW_IMPORT_BAD,     /* a bad row: skipped, err says why with its line */
	BW_IMPORT_END,     /* no more input */
	BW_IMPORT_FAIL     /* cannot go on: header, read error, no memory (err) */
} bw_import_status;

typedef struct bw_import_row {
	unsigned long line;     /* input line where the row starts */
	unsigned long line_end; /* and where it ends (a quoted field may span lines) */
	bw_consent c;           /* BW_IO_CONSENT */
	bw_suppression s;       /* BW_IO_SUPPRESS */
} bw_import_row;

/* The next row. On BW_IMPORT_ROW the caller owns the record's strings
 * (bw_consent_clear / bw_suppression_clear); the row is cleared first. */
bw_import_status bw_import_next(bw_import *im, bw_import_row *row, char *err, size_t errlen);

/* ---- importing: read, check, sort and write in batches ---- */
typedef struct bw_import_report {
	unsigned long rows;        /* records read (header and blank lines not counted) */
	unsigned long imported;    /* good rows committed to the store (checked, when no store) */
	unsigned long skipped;     /* bad rows */
	unsigned long duplicates;  /* good rows replaced by a later row with the same key */
	unsigned long batches;     /* transactions committed */
	unsigned long committed_line; /* every good row up to this input line is committed */
	unsigned long failed_from, failed_to; /* input lines of the batch that failed */
	bw_store_err store_err;    /* BW_STORE_OK unless a batch failed */
} bw_import_report;

typedef struct bw_import_hooks {
	/* a bad row: msg has its line number; return non-zero to stop */
	int (*bad)(void *ud, unsigned long line, const char *msg);
	/* a batch was committed: rows from input line first to last */
	void (*committed)(void *ud, unsigned long first, unsigned long last, size_t rows);
	void *ud;
} bw_import_hooks;

/*
 * Reads im to its end. With st NULL only checks (a dry run: rows are
 * counted as imported, nothing is written). Otherwise good rows collect in
 * a batch of batch rows (0: BW_IO_BATCH_DEF) which is sorted by key (the
 * later of two rows with the same key wins) and written with one
 * bw_store_write_many: all or nothing. A batch that fails stops the import
 * (BW_IMPORT_FAIL, rep->store_err, failed_from/to). Returns BW_IMPORT_END
 * when all input was read (rep->skipped may be non-zero), BW_IMPORT_BAD when
 * a hook stopped it, BW_IMPORT_FAIL with err on a header, read, memory or
 * store failure.
 */
bw_import_status bw_import_run(bw_import *im, bw_store *st, size_t batch,
    const bw_import_hooks *h, bw_import_report *rep, char *err, size_t errlen);

/* ---- writing ---- */
/* The CSV header line, with its line end (LF; the reader takes CRLF too). */
const char *bw_io_csv_header(bw_io_kind kind);
/* One record as a CSV row (all columns, in header order) or a JSON line
 * (sender, recipient, then the present fields), with its line end.
 * A malloc'd string, NULL when out of memory. */
char *bw_io_consent_line(const bw_consent *c, bw_io_format f);
char *bw_io_suppression_line(const bw_suppression *s, bw_io_format f);

#endif
