/*
 * ctl.h - what the files of bulkwardenctl share.
 */
#ifndef BW_CTL_H
#define BW_CTL_H

#include "config.h"
#include "store.h"

/* Prints the usage and exits 2 (the int keeps callers' returns short). */
int ctl_usage(void);
/* The configuration at conf, errors printed; NULL on error. */
bw_policy *ctl_policy(const char *conf);
/* Its store, errors printed; NULL on error. */
bw_store *ctl_store(const bw_policy *p, int readonly);

/* ctl_sender.c */
int ctl_sender(const char *conf, int argc, char **argv);
int ctl_rate(const char *conf, int argc, char **argv);
int ctl_complaint(const char *conf, int argc, char **argv);

#endif
