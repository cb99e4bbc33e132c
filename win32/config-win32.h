/*
 * config-win32.h -- the hand-kept config.h of Visual Studio builds
 * (win32/dkv.sln), where configure does not run.  platform/platform.h
 * includes it when HAVE_CONFIG_H is not defined and _MSC_VER is.
 *
 * It mirrors every feature test of configure.ac, in the same order: each
 * DKV_HAVE_* macro configure can define appears here, defined when MSVC
 * with the Windows SDK has the feature, else as a commented #undef.
 * scripts/check-win32-sources.sh fails when the two lists drift apart:
 * add a line here whenever configure.ac gains a DKV_CHECK_* test.
 * (The mingw cross-build runs configure and does not use this file.)
 */
#ifndef DKV_CONFIG_WIN32_H
#define DKV_CONFIG_WIN32_H

/* <unistd.h>: POSIX only (MSVC has <io.h> and <direct.h>). */
/* #undef DKV_HAVE_UNISTD_H */

/* <sys/random.h>: Linux/BSD only (Windows: BCryptGenRandom). */
/* #undef DKV_HAVE_SYS_RANDOM_H */

/* mkdtemp(): POSIX only; platform/win32/tempdir.c does without. */
/* #undef DKV_HAVE_MKDTEMP */

/* fdatasync(): POSIX only (Windows: FlushFileBuffers). */
/* #undef DKV_HAVE_FDATASYNC */

/* explicit_bzero(): glibc/BSD only (Windows: SecureZeroMemory). */
/* #undef DKV_HAVE_EXPLICIT_BZERO */

/* getrandom(): Linux/FreeBSD only. */
/* #undef DKV_HAVE_GETRANDOM */

/* clock_gettime(): not in the MSVC runtime (APR gives the time). */
/* #undef DKV_HAVE_CLOCK_GETTIME */

/* A debug build (configure --enable-debug); MSVC Debug configurations
 * define _DEBUG instead. */
#ifdef _DEBUG
#define DKV_DEBUG 1
#endif

#endif /* DKV_CONFIG_WIN32_H */
