/*
 * service.c (win32) -- a daemon as a Windows service (platform/service.h):
 * the SCM dispatcher runs the program's main on the service's thread, the
 * control handler turns STOP and SHUTDOWN into the stop request of
 * signals.c (plat-win32.h), and the readiness reports become the service's
 * states (START_PENDING, RUNNING, STOP_PENDING, STOPPED).  Install and
 * uninstall talk to the SCM.  Strings are UTF-8 (APR's argv on Windows)
 * and go to the wide API.  The unix twin speaks sd_notify.
 */
#include "platform/service.h"

#include <windows.h>
#include <winsvc.h>

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

#include "common/status.h"
#include "platform/win32/plat-win32.h"

/* The wait hint while starting and when a stop was asked for, in ms. */
#define START_HINT_MS 30000
#define STOP_HINT_MS 30000

/* How long uninstall waits for a running service to stop, in ms, and how
 * often it looks. */
#define UNINSTALL_WAIT_MS 60000
#define UNINSTALL_POLL_MS 250

/* Guards the status below. */
static SRWLOCK lock = SRWLOCK_INIT;
/* Non-NULL once running under the SCM (set before the body runs). */
static SERVICE_STATUS_HANDLE status_handle;
static SERVICE_STATUS status;

/* What dispatch hands to service_main. */
static const char *svc_name;
static dkv_plat_service_main_fn *svc_fn;
static int svc_argc;
static const char **svc_argv;
static int svc_code;

/* Reports STATE to the SCM with WAIT_HINT (ms); the checkpoint counts up
 * in the pending states.  The state only goes forward: once STOP_PENDING,
 * neither RUNNING nor START_PENDING is reported again (a stop overtook
 * readiness), and after STOPPED nothing is (the SCM may end the process
 * then; a late report from another thread must not revive it).  No-op
 * outside a service. */
static void
report(DWORD state, DWORD wait_hint, DWORD exit_code)
{
    DWORD cur;

    AcquireSRWLockExclusive(&lock);
    cur = status.dwCurrentState;
    if (status_handle == NULL || cur == SERVICE_STOPPED
        || (cur == SERVICE_STOP_PENDING && state != SERVICE_STOP_PENDING
            && state != SERVICE_STOPPED)) {
        ReleaseSRWLockExclusive(&lock);
        return;
    }
    status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    status.dwCurrentState = state;
    status.dwControlsAccepted = 0;
    if (state == SERVICE_RUNNING || state == SERVICE_STOP_PENDING) {
        status.dwControlsAccepted = SERVICE_ACCEPT_STOP
                                    | SERVICE_ACCEPT_SHUTDOWN;
    }
    status.dwWaitHint = wait_hint;
    if (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING) {
        status.dwCheckPoint++;
    }
    else {
        status.dwCheckPoint = 0;
    }
    status.dwWin32ExitCode = NO_ERROR;
    status.dwServiceSpecificExitCode = 0;
    if (state == SERVICE_STOPPED && exit_code != 0) {
        status.dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
        status.dwServiceSpecificExitCode = exit_code;
    }
    (void)SetServiceStatus(status_handle, &status);
    ReleaseSRWLockExclusive(&lock);
}

/* The SCM's control handler (on the dispatcher's thread): STOP and
 * SHUTDOWN report STOP_PENDING and ask the process to stop; INTERROGATE
 * repeats the status.  Returns NO_ERROR or ERROR_CALL_NOT_IMPLEMENTED. */
static DWORD WINAPI
control_handler(DWORD control, DWORD type, void *data, void *context)
{
    (void)type;
    (void)data;
    (void)context;
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        report(SERVICE_STOP_PENDING, STOP_HINT_MS, 0);
        dkv_plat_win32_request_stop(control == SERVICE_CONTROL_STOP
                                    ? "service stop" : "system shutdown");
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        AcquireSRWLockExclusive(&lock);
        if (status_handle != NULL) {
            (void)SetServiceStatus(status_handle, &status);
        }
        ReleaseSRWLockExclusive(&lock);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* Converts UTF-8 TEXT to UTF-16 in POOL; NULL for NULL or bad text. */
static wchar_t *
to_wide(const char *text, apr_pool_t *pool)
{
    int n;
    wchar_t *w;

    if (text == NULL) {
        return NULL;
    }
    n = MultiByteToWideChar(CP_UTF8, 0, text, -1, NULL, 0);
    if (n <= 0) {
        return NULL;
    }
    w = apr_palloc(pool, (apr_size_t)n * sizeof(wchar_t));
    if (MultiByteToWideChar(CP_UTF8, 0, text, -1, w, n) != n) {
        return NULL;
    }
    return w;
}

/* The service's entry point, called by the dispatcher on a thread of its
 * own: registers the handler, reports START_PENDING, runs the body and
 * reports STOPPED with its exit code.  The SCM's start parameters
 * (ARGC, ARGV) are ignored: the settings come from the command line. */
static void WINAPI
service_main(DWORD argc, wchar_t **argv)
{
    apr_pool_t *pool;
    wchar_t *wname;
    SERVICE_STATUS_HANDLE h;

    (void)argc;
    (void)argv;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        svc_code = 1;
        return;
    }
    wname = to_wide(svc_name, pool);
    h = wname != NULL ? RegisterServiceCtrlHandlerExW(wname, control_handler,
                                                      NULL)
                      : NULL;
    apr_pool_destroy(pool);
    if (h == NULL) {
        svc_code = 1;
        return;
    }
    AcquireSRWLockExclusive(&lock);
    status_handle = h;
    memset(&status, 0, sizeof(status));
    ReleaseSRWLockExclusive(&lock);
    report(SERVICE_START_PENDING, START_HINT_MS, 0);
    svc_code = svc_fn(svc_argc, svc_argv);
    report(SERVICE_STOPPED, 0, (DWORD)svc_code);
}

/* See service.h. */
int
dkv_plat_service_dispatch(const char *name, dkv_plat_service_main_fn *fn,
                          int argc, const char *const *argv)
{
    SERVICE_TABLE_ENTRYW table[2];
    apr_pool_t *pool;
    int i, found = 0;
    DWORD e;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--service") == 0) {
            found = 1;
        }
    }
    if (!found) {
        return -1;
    }
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return 1;
    }
    svc_name = name;
    svc_fn = fn;
    svc_argv = apr_pcalloc(pool, ((apr_size_t)argc + 1) * sizeof(char *));
    svc_argc = 0;
    for (i = 0; i < argc; i++) {
        if (i == 0 || strcmp(argv[i], "--service") != 0) {
            svc_argv[svc_argc++] = argv[i];
        }
    }
    svc_code = 1;
    memset(table, 0, sizeof(table));
    table[0].lpServiceName = to_wide(name, pool);
    table[0].lpServiceProc = service_main;
    if (table[0].lpServiceName == NULL) {
        apr_pool_destroy(pool);
        return 1;
    }
    if (!StartServiceCtrlDispatcherW(table)) {
        e = GetLastError();
        if (e == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            fprintf(stderr, "%s: --service is for the service control "
                    "manager (start the service with \"sc start %s\"); "
                    "run without --service from a console\n", name, name);
        }
        else {
            fprintf(stderr, "%s: StartServiceCtrlDispatcher failed "
                    "(Windows error %lu)\n", name, (unsigned long)e);
        }
        return 2;
    }
    /* The pool stays: the body's ARGV points into it until exit. */
    return svc_code;
}

/* See service.h. */
void
dkv_plat_service_ready(const char *text)
{
    (void)text;
    report(SERVICE_RUNNING, 0, 0);
}

/* See service.h: nothing on Windows. */
void
dkv_plat_service_status(const char *text)
{
    (void)text;
}

/* See service.h. */
void
dkv_plat_service_stopping(unsigned wait_hint_ms)
{
    report(SERVICE_STOP_PENDING, wait_hint_ms, 0);
}

/* Sets a dkv error for the failed call WHAT on service NAME with the
 * Windows error E (access denied says to run as Administrator).  Returns
 * the status. */
static dkv_status_t
scm_error(DWORD e, const char *what, const char *name)
{
    if (e == ERROR_ACCESS_DENIED) {
        return dkv_error_set(APR_FROM_OS_ERROR(e), "%s %s: access denied "
                             "(run as Administrator)", what, name);
    }
    return dkv_error_set(APR_FROM_OS_ERROR(e), "%s %s failed (Windows "
                         "error %lu)", what, name, (unsigned long)e);
}

/* See service.h: the path of this executable, quoted, then " --service"
 * and ARGS, as an automatic-start service of its own process. */
dkv_status_t
dkv_plat_service_install(const char *name, const char *display,
                         const char *description, const char *args,
                         const char *account)
{
    apr_pool_t *pool;
    wchar_t exe[MAX_PATH + 1], *cmd, *wname, *wdisplay, *wdesc, *wacct;
    char *exe8;
    int n8;
    DWORD n, e;
    SC_HANDLE scm, svc;
    SERVICE_DESCRIPTIONW desc;
    dkv_status_t st = DKV_OK;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    n = GetModuleFileNameW(NULL, exe, MAX_PATH + 1);
    if (n == 0 || n > MAX_PATH) {
        apr_pool_destroy(pool);
        return dkv_error_set(APR_EGENERAL, "cannot find the path of this "
                             "program");
    }
    exe[n] = L'\0';
    n8 = WideCharToMultiByte(CP_UTF8, 0, exe, -1, NULL, 0, NULL, NULL);
    exe8 = apr_palloc(pool, n8 > 0 ? (apr_size_t)n8 : 1);
    if (n8 <= 0 || WideCharToMultiByte(CP_UTF8, 0, exe, -1, exe8, n8, NULL,
                                       NULL) != n8) {
        apr_pool_destroy(pool);
        return dkv_error_set(APR_EGENERAL, "cannot convert the path of this"
                             " program");
    }
    cmd = to_wide(apr_pstrcat(pool, "\"", exe8, "\" --service",
                              args != NULL && args[0] != '\0' ? " " : "",
                              args != NULL ? args : "", NULL), pool);
    wname = to_wide(name, pool);
    wdisplay = to_wide(display != NULL ? display : name, pool);
    wdesc = to_wide(description, pool);
    wacct = to_wide(account, pool);
    if (cmd == NULL || wname == NULL || wdisplay == NULL) {
        apr_pool_destroy(pool);
        return dkv_error_set(DKV_EINVAL, "the service's name or command "
                             "line is not valid UTF-8");
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT
                         | SC_MANAGER_CREATE_SERVICE);
    if (scm == NULL) {
        st = scm_error(GetLastError(), "opening the service control manager"
                       " to install", name);
        apr_pool_destroy(pool);
        return st;
    }
    svc = CreateServiceW(scm, wname, wdisplay, SERVICE_ALL_ACCESS,
                         SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
                         SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, wacct,
                         NULL);
    if (svc == NULL) {
        e = GetLastError();
        if (e == ERROR_SERVICE_EXISTS || e == ERROR_DUPLICATE_SERVICE_NAME) {
            st = dkv_error_set(APR_FROM_OS_ERROR(e), "the service %s already"
                               " exists (remove it first with "
                               "--uninstall-service)", name);
        }
        else {
            st = scm_error(e, "creating the service", name);
        }
    }
    else {
        if (wdesc != NULL) {
            desc.lpDescription = wdesc;
            (void)ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION,
                                        &desc);
        }
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    apr_pool_destroy(pool);
    return st;
}

/* Waits up to UNINSTALL_WAIT_MS, looking every UNINSTALL_POLL_MS, while
 * SVC's state is STATE (IS nonzero) or is not STATE (IS zero).  Returns
 * the last state seen, or 0 when it cannot be read. */
static DWORD
wait_state(SC_HANDLE svc, DWORD state, int is)
{
    SERVICE_STATUS ss;
    DWORD waited = 0;

    for (;;) {
        if (!QueryServiceStatus(svc, &ss)) {
            return 0;
        }
        if ((ss.dwCurrentState == state) != (is != 0)
            || waited >= UNINSTALL_WAIT_MS) {
            return ss.dwCurrentState;
        }
        Sleep(UNINSTALL_POLL_MS);
        waited += UNINSTALL_POLL_MS;
    }
}

/* See service.h: a service that does not stop within 60 s is still
 * marked for deletion (the SCM removes it when it stops), and the status
 * says so.  One still starting is first given the time to finish. */
dkv_status_t
dkv_plat_service_uninstall(const char *name)
{
    apr_pool_t *pool;
    wchar_t *wname;
    SC_HANDLE scm, svc;
    SERVICE_STATUS ss;
    DWORD e, cur;
    int stopped = 1;
    dkv_status_t st = DKV_OK;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    wname = to_wide(name, pool);
    if (wname == NULL) {
        apr_pool_destroy(pool);
        return dkv_error_set(DKV_EINVAL, "the service name is not valid "
                             "UTF-8");
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm == NULL) {
        st = scm_error(GetLastError(), "opening the service control manager"
                       " to uninstall", name);
        apr_pool_destroy(pool);
        return st;
    }
    svc = OpenServiceW(scm, wname, SERVICE_STOP | SERVICE_QUERY_STATUS
                       | DELETE);
    apr_pool_destroy(pool);
    if (svc == NULL) {
        e = GetLastError();
        CloseServiceHandle(scm);
        if (e == ERROR_SERVICE_DOES_NOT_EXIST) {
            return dkv_error_set(APR_FROM_OS_ERROR(e), "the service %s is "
                                 "not installed", name);
        }
        return scm_error(e, "opening the service", name);
    }
    /* One still starting accepts no stop yet. */
    cur = wait_state(svc, SERVICE_START_PENDING, 1);
    if (cur != 0 && cur != SERVICE_STOPPED) {
        if (cur != SERVICE_STOP_PENDING
            && !ControlService(svc, SERVICE_CONTROL_STOP, &ss)) {
            e = GetLastError();
            if (e != ERROR_SERVICE_NOT_ACTIVE) {
                st = scm_error(e, "stopping the service", name);
                CloseServiceHandle(svc);
                CloseServiceHandle(scm);
                return st;
            }
        }
        stopped = wait_state(svc, SERVICE_STOPPED, 0) == SERVICE_STOPPED;
    }
    if (!DeleteService(svc)) {
        e = GetLastError();
        if (e == ERROR_SERVICE_MARKED_FOR_DELETE) {
            st = dkv_error_set(APR_FROM_OS_ERROR(e), "the service %s is "
                               "already marked for deletion (it goes when "
                               "it stops and no program holds it open)",
                               name);
        }
        else {
            st = scm_error(e, "deleting the service", name);
        }
    }
    else if (!stopped) {
        st = dkv_error_set(APR_TIMEUP, "the service %s did not stop within "
                           "%d s; it is marked for deletion and goes when "
                           "it stops", name, UNINSTALL_WAIT_MS / 1000);
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return st;
}
