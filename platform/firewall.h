/*
 * firewall.h -- opening dkv's port ranges in the machine's firewall
 * (`dkv firewall open|close|status`, the packages' install scripts).
 *
 * One interface over several backends: nftables, firewalld, ufw and
 * iptables on Linux, pf on FreeBSD and macOS, Windows Defender Firewall
 * (the COM API, netsh as fallback).  Detection picks the firewall that is
 * in charge; every rule dkv makes carries a tag naming its range
 * ("dkv:management", "dkv:cluster", "dkv:client", "dkv:custom"), so
 * closing removes dkv's rules and nothing else.  Opening is idempotent:
 * a range dkv already opened is not added twice.
 *
 * Backends never run a program themselves: they go through a
 * dkv_fw_exec_t, which the tests replace with a recorder that checks the
 * exact commands and answers with scripted output.  The Windows COM
 * backend goes through a dkv_fw_winapi_t for the same reason.
 *
 * Files: platform/firewall.c (ranges, detection, the real runner),
 * platform/fw_linux.c (nftables, firewalld, ufw, iptables),
 * platform/fw_pf.c (pf), platform/fw_windows.c (the Windows backend's
 * rules, netsh), platform/win32/fwcom.c and platform/unix/fwcom.c (the
 * COM seam: the real one, and one that says "not on this system").
 * Design: docs/internals/operations.md.
 */
#ifndef DKV_PLATFORM_FIREWALL_H
#define DKV_PLATFORM_FIREWALL_H

#include <stdint.h>

#include <apr_pools.h>
#include <apr_tables.h>

#include "platform/platform.h"

/* ---------------------------------------------------------------- ranges */

/* One inclusive TCP port range and the role it serves. */
typedef struct dkv_fw_range_t {
    const char *name;   /* "management", "cluster", "client", "custom" */
    uint16_t lo;
    uint16_t hi;        /* lo <= hi */
} dkv_fw_range_t;

/* The reference's three ranges: management 7801-7810, cluster
 * 7811-7860, client 7861-7899. */
#define DKV_FW_MANAGEMENT_LO 7801
#define DKV_FW_MANAGEMENT_HI 7810
#define DKV_FW_CLUSTER_LO 7811
#define DKV_FW_CLUSTER_HI 7860
#define DKV_FW_CLIENT_LO 7861
#define DKV_FW_CLIENT_HI 7899

/* Appends the three default ranges to RANGES (an array of
 * dkv_fw_range_t). */
void dkv_fw_default_ranges(apr_array_header_t *ranges);

/* Parses TEXT, a comma- or space-separated list of ranges, into a new
 * array *RANGES of dkv_fw_range_t.  Each item is "LO-HI" or "PORT",
 * optionally prefixed by a role ("cluster=7811-7860"); items without a
 * role are "custom".  Ports are 1..65535 and LO <= HI.  Returns DKV_OK,
 * or DKV_EINVAL with dkv_error_set naming the bad item. */
dkv_status_t dkv_fw_parse_ranges(apr_array_header_t **ranges,
                                 const char *text, apr_pool_t *pool);

/* The tag of a range's rules: "dkv:" followed by its role. */
const char *dkv_fw_tag(const dkv_fw_range_t *r, apr_pool_t *pool);

/* The role of TAG ("dkv:cluster" -> "cluster"), or NULL when TAG is not
 * one of dkv's tags. */
const char *dkv_fw_tag_role(const char *tag);

/* ---------------------------------------------------------- the runner */

/* How backends run programs (nft, firewall-cmd, ufw, iptables, pfctl,
 * netsh). */
typedef struct dkv_fw_exec_t {
    /* Runs ARGV (NULL-terminated; argv[0] is looked up on PATH), writing
     * INPUT (NULL: nothing) to its standard input.  *OUT receives its
     * standard output and standard error together (NUL-terminated, in
     * POOL), *EXIT_CODE its exit code.  Returns DKV_OK when the program
     * ran, whatever its exit code; APR_ENOENT (with dkv_error_set) when
     * it is not installed; another status when it could not be run or
     * was killed after the runner's time limit. */
    dkv_status_t (*run)(void *baton, const char *const *argv,
                        const char *input, char **out, int *exit_code,
                        apr_pool_t *pool);
    void *baton;
} dkv_fw_exec_t;

/* The real runner: APR child processes, 30 s limit per command. */
dkv_fw_exec_t dkv_fw_exec_system(void);

/* ------------------------------------------------ the Windows COM seam */

/* One Windows Defender Firewall rule as dkv makes it: inbound, allow,
 * TCP, every profile, enabled, in the group "dkv". */
typedef struct dkv_fw_winrule_t {
    const char *name;        /* "dkv management ports" ... */
    const char *description; /* names the tag, e.g. "dkv:management" */
    const char *group;       /* always "dkv" */
    const char *local_ports; /* "7801-7810" */
} dkv_fw_winrule_t;

/* The COM API as the Windows backend uses it. */
typedef struct dkv_fw_winapi_t {
    /* DKV_OK when the firewall service answers; APR_ENOTIMPL when this
     * system has no COM firewall (every non-Windows build). */
    dkv_status_t (*available)(void *baton);
    /* Adds RULE (INetFwRules::Add). */
    dkv_status_t (*add)(void *baton, const dkv_fw_winrule_t *rule);
    /* Removes every rule named NAME (INetFwRules::Remove). */
    dkv_status_t (*remove)(void *baton, const char *name);
    /* Appends to RULES (dkv_fw_winrule_t) every rule whose group is
     * GROUP. */
    dkv_status_t (*list)(void *baton, const char *group,
                         apr_array_header_t *rules, apr_pool_t *pool);
    void *baton;
} dkv_fw_winapi_t;

/* This system's COM seam: the real API on Windows
 * (platform/win32/fwcom.c), else one whose available() answers
 * APR_ENOTIMPL (platform/unix/fwcom.c). */
dkv_fw_winapi_t dkv_fw_winapi_system(void);

/* ----------------------------------------------------------- backends */

/* What every backend works with. */
typedef struct dkv_fw_ctx_t {
    dkv_fw_exec_t exec;
    dkv_fw_winapi_t winapi;
    /* pf: the file that keeps the anchor's rules across reboots (NULL:
     * /etc/pf.anchors/dkv); the anchor is "dkv". */
    const char *pf_anchor_file;
    apr_pool_t *pool;
} dkv_fw_ctx_t;

/* A context with the real runner and COM seam. */
void dkv_fw_ctx_init(dkv_fw_ctx_t *ctx, apr_pool_t *pool);

typedef struct dkv_fw_backend_t {
    const char *name;   /* "nftables", "firewalld", "ufw", "iptables",
                         * "pf", "windows", "netsh" */
    /* *ACTIVE: 1 when this firewall is installed and filtering inbound
     * traffic (in charge), else 0.  *WHY (in ctx->pool): one line on what
     * was found ("firewalld is running, default zone public", "ufw is
     * installed but inactive", "nft is not installed").  A failure to
     * find out is *ACTIVE 0 with the reason, not an error; errors are for
     * things like the runner breaking down. */
    dkv_status_t (*detect)(dkv_fw_ctx_t *ctx, int *active, const char **why);
    /* Opens RANGES (N of them) for inbound TCP, tagged; ranges dkv has
     * already opened are left as they are.  Makes the rules last across
     * reboots where the firewall itself keeps rules (firewalld and ufw
     * do; pf through its anchor file; nftables and iptables rules are
     * runtime only: the dkv-firewall service reopens them at boot). */
    dkv_status_t (*open)(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges,
                         int n);
    /* Removes dkv's rules for RANGES, or all of dkv's rules when N is 0.
     * Never touches a rule without dkv's tag.  Nothing to remove is not
     * an error. */
    dkv_status_t (*close)(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges,
                          int n);
    /* Appends to OPEN (dkv_fw_range_t, in ctx->pool) the ranges dkv's
     * rules open now. */
    dkv_status_t (*list)(dkv_fw_ctx_t *ctx, apr_array_header_t *open);
} dkv_fw_backend_t;

/* Status conventions for open, close and list: APR_EACCES with a message
 * saying to run as root/Administrator when the firewall refuses for lack
 * of privileges; DKV_EUNAVAILABLE when the firewall does not answer (not
 * running, no D-Bus); other failures with the program's own message. */

extern const dkv_fw_backend_t dkv_fw_nftables;   /* fw_linux.c */
extern const dkv_fw_backend_t dkv_fw_firewalld;  /* fw_linux.c */
extern const dkv_fw_backend_t dkv_fw_ufw;        /* fw_linux.c */
extern const dkv_fw_backend_t dkv_fw_iptables;   /* fw_linux.c */
extern const dkv_fw_backend_t dkv_fw_pf;         /* fw_pf.c */
extern const dkv_fw_backend_t dkv_fw_windows;    /* fw_windows.c (COM) */
extern const dkv_fw_backend_t dkv_fw_netsh;      /* fw_windows.c */

/* This system's backends in detection order, NULL-terminated.  Linux:
 * firewalld, ufw, nftables, iptables (the front ends first: they manage
 * the tables below them).  FreeBSD, macOS: pf.  Windows: windows, netsh. */
const dkv_fw_backend_t *const *dkv_fw_backends(void);

/* Any backend by name, on any system (the tests use the others'); NULL
 * when unknown. */
const dkv_fw_backend_t *dkv_fw_backend_named(const char *name);

/* Finds the backend in charge: the first of dkv_fw_backends() whose
 * detect says active.  *FOUND is it, or NULL with DKV_ENOTFOUND returned
 * and dkv_error_set saying that no firewall is active and listing what
 * each backend found.  *REPORT (may be NULL) receives the per-backend
 * findings, one "name: why" line each. */
dkv_status_t dkv_fw_detect(dkv_fw_ctx_t *ctx,
                           const dkv_fw_backend_t **found,
                           const char **report);

#endif /* DKV_PLATFORM_FIREWALL_H */
