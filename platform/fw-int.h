/*
 * fw-int.h -- helpers the firewall backends and `dkv firewall` share
 * (platform/firewall.c defines them): running a program through
 * ctx->exec with a varargs argv, one backend's detection, turning a
 * failed command into a status and a message, and small operations on
 * arrays of dkv_fw_range_t.  Not installed; not part of
 * any public interface.
 */
#ifndef DKV_PLATFORM_FW_INT_H
#define DKV_PLATFORM_FW_INT_H

#include "platform/firewall.h"

/* Runs PROG with the further arguments (const char *, ending with NULL)
 * through CTX->exec, writing INPUT (NULL: nothing) to its standard input.
 * *OUT (in ctx->pool; "" when nothing) and *CODE receive the output and
 * exit code.  Returns the runner's status: DKV_OK when the program ran
 * whatever its exit code, APR_ENOENT when it is not installed. */
dkv_status_t dkv_fw__run(dkv_fw_ctx_t *ctx, char **out, int *code,
                         const char *input, const char *prog, ...)
#if defined(__GNUC__)
    __attribute__((sentinel))
#endif
    ;

/* The same with an argv array (NULL-terminated). */
dkv_status_t dkv_fw__runv(dkv_fw_ctx_t *ctx, char **out, int *code,
                          const char *input, const char *const *argv);

/* Runs B's detect: *ACTIVE and a one-line *WHY (in ctx->pool), also
 * when detect itself failed (its message becomes the reason, "cannot
 * tell: ..."; *ACTIVE is then 0). */
void dkv_fw__detect_one(dkv_fw_ctx_t *ctx, const dkv_fw_backend_t *b,
                        int *active, const char **why);

/* 1 when OUT says the program lacked privileges ("Permission denied",
 * "Operation not permitted", "must be root", "You need to be root",
 * "Access is denied", "requires elevation" ...), ignoring case. */
int dkv_fw__denied(const char *out);

/* The status for PROG having exited with CODE and printed OUT, with
 * dkv_error_set: APR_EACCES ("PROG: permission denied (LINE); run as
 * root", Administrator for netsh) when OUT says so, else APR_EGENERAL with
 * OUT's first non-empty line ("PROG failed (exit CODE): LINE"). */
dkv_status_t dkv_fw__failed(dkv_fw_ctx_t *ctx, const char *prog, int code,
                            const char *out);

/* The first non-empty line of TEXT without its end of line, at most 160
 * bytes, in POOL ("" when none). */
const char *dkv_fw__first_line(const char *text, apr_pool_t *pool);

/* 1 when TEXT contains NEEDLE, ignoring ASCII case, else 0. */
int dkv_fw__contains(const char *text, const char *needle);

/* 1 when A and B cover the same ports (roles are not compared). */
int dkv_fw__same_range(const dkv_fw_range_t *a, const dkv_fw_range_t *b);

/* 1 when RANGES (an array of dkv_fw_range_t) holds R's ports. */
int dkv_fw__has_range(const apr_array_header_t *ranges,
                      const dkv_fw_range_t *r);

/* 1 when R is one of the N ranges RS (same ports), or N is 0 (closing
 * everything). */
int dkv_fw__selected(const dkv_fw_range_t *rs, int n,
                     const dkv_fw_range_t *r);

/* Appends a range to RANGES (ROLE copied into RANGES' pool; NULL:
 * "custom") unless it holds the same ports already. */
void dkv_fw__append(apr_array_header_t *ranges, const char *role,
                    uint16_t lo, uint16_t hi);

/* Parses "LO-HI", "LO:HI" or "PORT" (TEXT up to LEN bytes; LEN < 0:
 * NUL-terminated) into *LO, *HI.  Returns 1 when valid, else 0. */
int dkv_fw__parse_ports(uint16_t *lo, uint16_t *hi, const char *text,
                        int len);

/* "LO-HI" (or "PORT" when LO == HI) with SEP between, in POOL. */
const char *dkv_fw__ports(const dkv_fw_range_t *r, char sep,
                          apr_pool_t *pool);

#endif /* DKV_PLATFORM_FW_INT_H */
