/*
 * fwcom.c (win32) -- the Windows Defender Firewall COM seam
 * (platform/firewall.h): INetFwPolicy2 and its INetFwRules through the
 * C vtables of mingw's netfw.h.  Every call initializes COM for the
 * calling thread, makes the policy object, does its work and releases
 * everything again, so the seam holds no state between calls.
 * Strings cross as BSTRs converted from and to UTF-8.  Access denied
 * (E_ACCESSDENIED) is APR_EACCES, "run as Administrator"; any other
 * failure is APR_EGENERAL with the HRESULT.  The twin for other systems
 * is platform/unix/fwcom.c.
 */
/* The Windows headers first: apr.h includes windows.h with NOUSER,
 * which leaves out what OLE needs. */
#define COBJMACROS
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <objbase.h>
#include <oleauto.h>
#include <netfw.h>

#include <string.h>

#include <apr_strings.h>

#include "platform/firewall.h"
#include "common/alloc.h"
#include "common/status.h"

/* Most rules enumerated; a guard against a broken enumerator. */
#define FWCOM_MAX_RULES 100000

/* Most removals of one name (Remove takes one rule at a time). */
#define FWCOM_MAX_SAME_NAME 64

/* The class and interface ids, spelled out here so that no uuid library
 * is needed. */
static const CLSID fwcom_clsid_policy2 = {
    0xe2b3c97f, 0x6ae1, 0x41ac, { 0x81, 0x7a, 0xf6, 0xf9, 0x21, 0x66, 0xd7,
                                  0xdd } };
static const IID fwcom_iid_policy2 = {
    0x98325047, 0xc671, 0x4174, { 0x8d, 0x81, 0xde, 0xfc, 0xd3, 0xf0, 0x31,
                                  0x86 } };
static const CLSID fwcom_clsid_rule = {
    0x2c5bc43e, 0x3369, 0x4c33, { 0xab, 0x0c, 0xbe, 0x94, 0x69, 0x67, 0x7a,
                                  0xf4 } };
static const IID fwcom_iid_rule = {
    0xaf230d27, 0xbaba, 0x4e42, { 0xac, 0xed, 0xf5, 0x24, 0xf2, 0x2c, 0xfc,
                                  0xe2 } };
static const IID fwcom_iid_enumvariant = {
    0x00020404, 0x0000, 0x0000, { 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x46 } };

/* One call's COM state. */
typedef struct fwcom_session {
    int uninit;             /* 1: CoUninitialize at the end */
    INetFwPolicy2 *policy;
    INetFwRules *rules;
} fwcom_session_t;

/* The status for HR, the failure of WHAT, with dkv_error_set. */
static dkv_status_t
fwcom_fail(HRESULT hr, const char *what)
{
    if (hr == E_NOTIMPL) {
        return dkv_error_set(APR_ENOTIMPL, "Windows firewall: %s is not "
                             "implemented by this system's firewall API "
                             "(E_NOTIMPL)", what);
    }
    if (hr == E_ACCESSDENIED) {
        return dkv_error_set(APR_EACCES, "Windows firewall: %s: access is "
                             "denied; run as Administrator", what);
    }
    return dkv_error_set(APR_EGENERAL, "Windows firewall: %s failed "
                         "(HRESULT 0x%08lx)", what, (unsigned long)hr);
}

/* Ends session S: releases what it holds and uninitializes COM. */
static void
fwcom_end(fwcom_session_t *s)
{
    if (s->rules != NULL) {
        INetFwRules_Release(s->rules);
    }
    if (s->policy != NULL) {
        INetFwPolicy2_Release(s->policy);
    }
    if (s->uninit) {
        CoUninitialize();
    }
    memset(s, 0, sizeof(*s));
}

/* Starts session S: COM, the policy and its rules.  Returns DKV_OK, or
 * a failure (S ended). */
static dkv_status_t
fwcom_begin(fwcom_session_t *s)
{
    HRESULT hr;

    memset(s, 0, sizeof(*s));
    hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (SUCCEEDED(hr)) {
        s->uninit = 1;
    }
    else if (hr != RPC_E_CHANGED_MODE) {
        return fwcom_fail(hr, "CoInitializeEx");
    }
    hr = CoCreateInstance(&fwcom_clsid_policy2, NULL, CLSCTX_INPROC_SERVER,
                          &fwcom_iid_policy2, (void **)&s->policy);
    if (FAILED(hr) || s->policy == NULL) {
        s->policy = NULL;
        fwcom_end(s);
        return fwcom_fail(hr, "creating INetFwPolicy2");
    }
    hr = INetFwPolicy2_get_Rules(s->policy, &s->rules);
    if (FAILED(hr) || s->rules == NULL) {
        s->rules = NULL;
        fwcom_end(s);
        return fwcom_fail(hr, "INetFwPolicy2::get_Rules");
    }
    return DKV_OK;
}

/* A new BSTR holding UTF-8 TEXT (free with SysFreeString), or NULL when
 * out of memory. */
static BSTR
fwcom_bstr(const char *text)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, text, -1, NULL, 0);
    WCHAR *w;
    BSTR b;

    if (n <= 0) {
        return SysAllocString(L"");
    }
    w = dkv_malloc((size_t)n * sizeof(WCHAR));
    if (w == NULL) {
        return NULL;
    }
    MultiByteToWideChar(CP_UTF8, 0, text, -1, w, n);
    b = SysAllocString(w);
    dkv_free(w);
    return b;
}

/* BSTR B as UTF-8 in POOL ("" for NULL). */
static const char *
fwcom_utf8(BSTR b, apr_pool_t *pool)
{
    int n;
    char *s;

    if (b == NULL) {
        return "";
    }
    n = WideCharToMultiByte(CP_UTF8, 0, b, -1, NULL, 0, NULL, NULL);
    if (n <= 0) {
        return "";
    }
    s = apr_palloc(pool, (apr_size_t)n);
    WideCharToMultiByte(CP_UTF8, 0, b, -1, s, n, NULL, NULL);
    return s;
}

/* See firewall.h: the firewall answers, and is not off for every
 * current profile. */
static dkv_status_t
fwcom_available(void *baton)
{
    fwcom_session_t s;
    dkv_status_t rv;
    long types = 0;
    VARIANT_BOOL on = VARIANT_FALSE;
    int off = 0;

    (void)baton;
    rv = fwcom_begin(&s);
    if (rv != DKV_OK) {
        return rv;
    }
    if (SUCCEEDED(INetFwPolicy2_get_CurrentProfileTypes(s.policy, &types))
        && types != 0) {
        static const NET_FW_PROFILE_TYPE2 profiles[] = {
            NET_FW_PROFILE2_DOMAIN, NET_FW_PROFILE2_PRIVATE,
            NET_FW_PROFILE2_PUBLIC
        };
        int i, asked = 0, enabled = 0;

        for (i = 0; i < 3; i++) {
            if ((types & (long)profiles[i]) != 0 &&
                SUCCEEDED(INetFwPolicy2_get_FirewallEnabled(
                    s.policy, profiles[i], &on))) {
                asked++;
                enabled += on != VARIANT_FALSE;
            }
        }
        off = asked > 0 && enabled == 0;
    }
    fwcom_end(&s);
    if (off) {
        return dkv_error_set(DKV_EUNAVAILABLE, "Windows Defender Firewall "
                             "is off for the current profile");
    }
    return DKV_OK;
}

/* Sets the string property of RULE with SETTER to TEXT; returns the
 * HRESULT (E_OUTOFMEMORY when the BSTR could not be made). */
static HRESULT
fwcom_put(INetFwRule *rule, HRESULT (STDMETHODCALLTYPE *setter)(
              INetFwRule *, BSTR), const char *text)
{
    BSTR b = fwcom_bstr(text);
    HRESULT hr;

    if (b == NULL) {
        return E_OUTOFMEMORY;
    }
    hr = setter(rule, b);
    SysFreeString(b);
    return hr;
}

/* See firewall.h: an inbound allow TCP rule for every profile. */
static dkv_status_t
fwcom_add(void *baton, const dkv_fw_winrule_t *r)
{
    fwcom_session_t s;
    INetFwRule *rule = NULL;
    const char *step = "creating INetFwRule";
    dkv_status_t rv;
    HRESULT hr;

    (void)baton;
    rv = fwcom_begin(&s);
    if (rv != DKV_OK) {
        return rv;
    }
    hr = CoCreateInstance(&fwcom_clsid_rule, NULL, CLSCTX_INPROC_SERVER,
                          &fwcom_iid_rule, (void **)&rule);
    if (SUCCEEDED(hr) && rule == NULL) {
        hr = E_POINTER;
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's name";
        hr = fwcom_put(rule, rule->lpVtbl->put_Name, r->name);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's description";
        hr = fwcom_put(rule, rule->lpVtbl->put_Description, r->description);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's group";
        hr = fwcom_put(rule, rule->lpVtbl->put_Grouping, r->group);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's protocol";
        hr = INetFwRule_put_Protocol(rule, NET_FW_IP_PROTOCOL_TCP);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's ports";
        hr = fwcom_put(rule, rule->lpVtbl->put_LocalPorts, r->local_ports);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's direction";
        hr = INetFwRule_put_Direction(rule, NET_FW_RULE_DIR_IN);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's action";
        hr = INetFwRule_put_Action(rule, NET_FW_ACTION_ALLOW);
    }
    if (SUCCEEDED(hr)) {
        step = "setting the rule's profiles";
        hr = INetFwRule_put_Profiles(rule, NET_FW_PROFILE2_ALL);
    }
    if (SUCCEEDED(hr)) {
        step = "enabling the rule";
        hr = INetFwRule_put_Enabled(rule, VARIANT_TRUE);
    }
    if (SUCCEEDED(hr)) {
        step = "INetFwRules::Add";
        hr = INetFwRules_Add(s.rules, rule);
    }
    if (rule != NULL) {
        INetFwRule_Release(rule);
    }
    fwcom_end(&s);
    if (FAILED(hr)) {
        return fwcom_fail(hr, step);
    }
    return DKV_OK;
}

/* See firewall.h: removes rules named NAME while there are any. */
static dkv_status_t
fwcom_remove(void *baton, const char *name)
{
    fwcom_session_t s;
    dkv_status_t rv;
    BSTR b;
    HRESULT hr = S_OK;
    int i;

    (void)baton;
    rv = fwcom_begin(&s);
    if (rv != DKV_OK) {
        return rv;
    }
    b = fwcom_bstr(name);
    if (b == NULL) {
        fwcom_end(&s);
        return fwcom_fail(E_OUTOFMEMORY, "making a BSTR");
    }
    for (i = 0; i < FWCOM_MAX_SAME_NAME; i++) {
        INetFwRule *rule = NULL;

        if (FAILED(INetFwRules_Item(s.rules, b, &rule)) || rule == NULL) {
            break;
        }
        INetFwRule_Release(rule);
        hr = INetFwRules_Remove(s.rules, b);
        if (FAILED(hr)) {
            break;
        }
    }
    SysFreeString(b);
    fwcom_end(&s);
    if (FAILED(hr)) {
        return fwcom_fail(hr, "INetFwRules::Remove");
    }
    return DKV_OK;
}

/* Appends RULE to RULES when its group is GROUP. */
static void
fwcom_take(apr_array_header_t *rules, INetFwRule *rule, const char *group,
           apr_pool_t *pool)
{
    BSTR name = NULL, desc = NULL, grp = NULL, ports = NULL;
    dkv_fw_winrule_t *w;

    if (FAILED(INetFwRule_get_Grouping(rule, &grp)) ||
        strcmp(fwcom_utf8(grp, pool), group) != 0) {
        SysFreeString(grp);
        return;
    }
    (void)INetFwRule_get_Name(rule, &name);
    (void)INetFwRule_get_Description(rule, &desc);
    (void)INetFwRule_get_LocalPorts(rule, &ports);
    w = apr_array_push(rules);
    w->name = fwcom_utf8(name, pool);
    w->description = fwcom_utf8(desc, pool);
    w->group = fwcom_utf8(grp, pool);
    w->local_ports = fwcom_utf8(ports, pool);
    SysFreeString(name);
    SysFreeString(desc);
    SysFreeString(grp);
    SysFreeString(ports);
}

/* See firewall.h: enumerates every rule and keeps those of GROUP. */
static dkv_status_t
fwcom_list(void *baton, const char *group, apr_array_header_t *rules,
           apr_pool_t *pool)
{
    fwcom_session_t s;
    IUnknown *unk = NULL;
    IEnumVARIANT *en = NULL;
    dkv_status_t rv;
    HRESULT hr;
    int i;

    (void)baton;
    rv = fwcom_begin(&s);
    if (rv != DKV_OK) {
        return rv;
    }
    hr = INetFwRules_get__NewEnum(s.rules, &unk);
    if (SUCCEEDED(hr) && unk == NULL) {
        hr = E_POINTER;
    }
    if (SUCCEEDED(hr)) {
        hr = unk->lpVtbl->QueryInterface(unk, &fwcom_iid_enumvariant,
                                         (void **)&en);
        unk->lpVtbl->Release(unk);
    }
    if (FAILED(hr) || en == NULL) {
        fwcom_end(&s);
        return fwcom_fail(FAILED(hr) ? hr : E_POINTER,
                          "enumerating the rules");
    }
    for (i = 0; i < FWCOM_MAX_RULES; i++) {
        VARIANT v;
        ULONG got = 0;
        INetFwRule *rule = NULL;

        VariantInit(&v);
        if (IEnumVARIANT_Next(en, 1, &v, &got) != S_OK || got != 1) {
            VariantClear(&v);
            break;
        }
        if (v.vt == VT_DISPATCH && v.pdispVal != NULL &&
            SUCCEEDED(v.pdispVal->lpVtbl->QueryInterface(
                v.pdispVal, &fwcom_iid_rule, (void **)&rule)) &&
            rule != NULL) {
            fwcom_take(rules, rule, group, pool);
            INetFwRule_Release(rule);
        }
        VariantClear(&v);
    }
    IEnumVARIANT_Release(en);
    fwcom_end(&s);
    return DKV_OK;
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
