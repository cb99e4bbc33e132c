/*
 * fwcom.c (unix) -- the Windows firewall COM seam on systems without it
 * (platform/firewall.h): available() says so, and the other operations
 * refuse the same way, so the "windows" backend reports "not active"
 * here while the unit tests drive it through a recording seam instead.
 * The real one is platform/win32/fwcom.c.
 */
#include "platform/firewall.h"
#include "common/status.h"

/* Answers APR_ENOTIMPL: there is no COM firewall here. */
static dkv_status_t
fwcom_available(void *baton)
{
    (void)baton;
    return dkv_error_set(APR_ENOTIMPL, "the Windows firewall API exists "
                         "only on Windows");
}

/* Refuses (APR_ENOTIMPL) to add RULE. */
static dkv_status_t
fwcom_add(void *baton, const dkv_fw_winrule_t *rule)
{
    (void)rule;
    return fwcom_available(baton);
}

/* Refuses (APR_ENOTIMPL) to remove NAME. */
static dkv_status_t
fwcom_remove(void *baton, const char *name)
{
    (void)name;
    return fwcom_available(baton);
}

/* Refuses (APR_ENOTIMPL) to list GROUP. */
static dkv_status_t
fwcom_list(void *baton, const char *group, apr_array_header_t *rules,
           apr_pool_t *pool)
{
    (void)group;
    (void)rules;
    (void)pool;
    return fwcom_available(baton);
}

/* See firewall.h. */
dkv_fw_winapi_t
dkv_fw_winapi_system(void)
{
    dkv_fw_winapi_t w;

    w.available = fwcom_available;
    w.add = fwcom_add;
    w.remove = fwcom_remove;
    w.list = fwcom_list;
    w.baton = NULL;
    return w;
}
