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
 *   smoke-stop ... --client-port PORT ...   (run by dkv-manager as its
 *       --node-bin): a node that ignores stop requests.  It listens on
 *       127.0.0.1:PORT (or --bind ADDR), takes its stop event like a
 *       daemon, prints "stop request ignored (REASON)" for each request
 *       (to stdout, which the manager sends to node.log) and runs until
 *       terminated, at most 300 s.
 */
#include "platform/proc.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_network_io.h>
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

/* The deaf node's stop function: says so and does nothing else. */
static void
ignore_stop(void *baton, const char *reason)
{
    (void)baton;
    printf("stop request ignored (%s)\n", reason);
    fflush(stdout);
}

/* The deaf node (see the header comment): ARGV as dkv-manager gives it
 * to a node.  Returns the exit status (2 when it cannot listen). */
static int
deaf(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    apr_sockaddr_t *sa;
    apr_socket_t *sock;
    const char *bind = "127.0.0.1";
    apr_port_t port = 0;
    int i;

    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--client-port") == 0) {
            port = (apr_port_t)apr_atoi64(argv[i + 1]);
        }
        else if (strcmp(argv[i], "--bind") == 0) {
            bind = argv[i + 1];
        }
    }
    if (port == 0 || apr_pool_create(&pool, NULL) != APR_SUCCESS
        || apr_sockaddr_info_get(&sa, bind, APR_INET, port, 0, pool)
           != APR_SUCCESS
        || apr_socket_create(&sock, APR_INET, SOCK_STREAM, APR_PROTO_TCP,
                             pool) != APR_SUCCESS
        || apr_socket_bind(sock, sa) != APR_SUCCESS
        || apr_socket_listen(sock, 16) != APR_SUCCESS) {
        printf("deaf node: cannot listen on %s:%u\n", bind, (unsigned)port);
        return 2;
    }
    if (dkv_plat_stop_signals(ignore_stop, NULL) != DKV_OK) {
        printf("deaf node: %s\n", dkv_last_error());
        return 2;
    }
    printf("deaf node listening on %s:%u, ignoring stop requests\n", bind,
           (unsigned)port);
    fflush(stdout);
    for (i = 0; i < 300; i++) {
        Sleep(1000);
    }
    return 0;
}

/* Dispatches on the first argument.  Returns the exit status. */
int
main(int argc, const char *const *argv)
{
    dkv_status_t st;
    int graceful, i;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    atexit(apr_terminate);
    if (argc >= 5 && strcmp(argv[1], "run") == 0) {
        return run(argv[2], argv[3], argc - 4, argv + 4);
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--client-port") == 0) {
            return deaf(argc, argv);
        }
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
