/*
 * smoke-stop.c -- the Windows tests' helper for stopping a daemon the way
 * dkv-manager does (dkv_plat_proc_signal, platform/proc.h), since wine
 * offers no command that sets a named event.
 *
 *   smoke-stop run PIDFILE SECONDS PROGRAM [ARG...]
 *       starts PROGRAM with ARGs (inheriting the console), writes its
 *       process id to PIDFILE, waits up to SECONDS for it to end (then
 *       terminates it and exits 3) and exits with its exit code.
 *   smoke-stop stop PID          graceful: sets "Local\dkv-stop-PID"
 *   smoke-stop kill PID          forced: TerminateProcess
 *       exit 0 when the request was delivered, 1 with a message if not.
 */
#include "platform/proc.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "common/status.h"

/* Appends ARG to the command line in BUF (CAP bytes) quoted the way the
 * C runtime splits it (backslashes doubled before a quote).  Returns 0,
 * or -1 when BUF is too small. */
static int
append_arg(char *buf, size_t cap, const char *arg)
{
    size_t len = strlen(buf), slashes = 0, k;
    const char *p;

#define PUT(c)                          \
    do {                                \
        if (len + 1 >= cap) {           \
            return -1;                  \
        }                               \
        buf[len++] = (c);               \
        buf[len] = '\0';                \
    } while (0)
    if (len > 0) {
        PUT(' ');
    }
    PUT('"');
    for (p = arg; *p != '\0'; p++) {
        if (*p == '\\') {
            slashes++;
            continue;
        }
        for (k = 0; k < slashes * (*p == '"' ? 2 : 1); k++) {
            PUT('\\');
        }
        slashes = 0;
        if (*p == '"') {
            PUT('\\');
        }
        PUT(*p);
    }
    for (k = 0; k < slashes * 2; k++) {
        PUT('\\');
    }
    PUT('"');
#undef PUT
    return 0;
}

/* "run": see the header comment.  Returns the exit status. */
static int
run(const char *pidfile, const char *seconds, int argc,
    const char *const *argv)
{
    static char cmd[32768];
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    DWORD code = 0;
    FILE *f;
    long secs = strtol(seconds, NULL, 10);
    int i;

    cmd[0] = '\0';
    for (i = 0; i < argc; i++) {
        if (append_arg(cmd, sizeof(cmd), argv[i]) != 0) {
            fprintf(stderr, "smoke-stop: command line too long\n");
            return 2;
        }
    }
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si,
                        &pi)) {
        fprintf(stderr, "smoke-stop: cannot start %s (Windows error %lu)\n",
                argv[0], (unsigned long)GetLastError());
        return 2;
    }
    CloseHandle(pi.hThread);
    f = fopen(pidfile, "w");
    if (f == NULL || fprintf(f, "%lu\n", (unsigned long)pi.dwProcessId) < 0
        || fclose(f) != 0) {
        fprintf(stderr, "smoke-stop: cannot write %s\n", pidfile);
        TerminateProcess(pi.hProcess, 1);
        return 2;
    }
    if (secs <= 0 || secs > 3600) {
        secs = 60;
    }
    if (WaitForSingleObject(pi.hProcess, (DWORD)secs * 1000)
        != WAIT_OBJECT_0) {
        fprintf(stderr, "smoke-stop: %s still runs after %ld s: "
                "terminated\n", argv[0], secs);
        TerminateProcess(pi.hProcess, 1);
        CloseHandle(pi.hProcess);
        return 3;
    }
    (void)GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    return (int)code;
}

/* Dispatches on the first argument.  Returns the exit status. */
int
main(int argc, const char *const *argv)
{
    dkv_status_t st;
    int graceful;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    atexit(apr_terminate);
    if (argc >= 5 && strcmp(argv[1], "run") == 0) {
        return run(argv[2], argv[3], argc - 4, argv + 4);
    }
    if (argc == 3 && (strcmp(argv[1], "stop") == 0
                      || strcmp(argv[1], "kill") == 0)) {
        graceful = strcmp(argv[1], "stop") == 0;
        st = dkv_plat_proc_signal(apr_atoi64(argv[2]), graceful);
        if (st != DKV_OK) {
            fprintf(stderr, "smoke-stop: %s\n", dkv_last_error());
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: smoke-stop run PIDFILE SECONDS PROGRAM [ARG...]"
            "\n       smoke-stop stop|kill PID\n");
    return 2;
}
