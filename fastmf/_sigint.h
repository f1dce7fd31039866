/* Ctrl-C during a long kernel call: the wrapper side of csrc/common.h's interrupt flag.
 *
 * Not in csrc/: a signal handler can only reach a global, and the kernels have none. Each Cython
 * wrapper that includes this header has its own copy (static). Protocol (fastmf/_common.pxd,
 * sigint_watch / sigint_unwatch): in the main thread, when Python's SIGINT handler is its default
 * (the one that raises KeyboardInterrupt), the wrapper installs fastmf_sigint_handler for the
 * duration of one nogil kernel call, passes &fastmf_sigint_flag to the kernel, restores the
 * previous handler right after, and raises KeyboardInterrupt itself when the flag was raised. The
 * handler only stores to a volatile int (async-signal-safe); OpenMP threads read it between rows.
 */
#ifndef FASTMF_SIGINT_H
#define FASTMF_SIGINT_H

#include <signal.h>
#include <string.h>

#include "common.h"

static fastmf_interrupt fastmf_sigint_flag = 0;

static void fastmf_sigint_handler(int sig)
{
    (void)sig;
    fastmf_sigint_flag = 1;
}

#if defined(_WIN32)
static void (*fastmf_sigint_previous)(int) = SIG_DFL;

/* install the handler; 1 on success */
static int fastmf_sigint_install(void)
{
    void (*prev)(int);
    fastmf_sigint_flag = 0;
    prev = signal(SIGINT, fastmf_sigint_handler);
    if (prev == SIG_ERR) return 0;
    fastmf_sigint_previous = prev;
    return 1;
}

/* put the previous handler back; returns the flag (1: SIGINT arrived meanwhile) */
static int fastmf_sigint_restore(void)
{
    signal(SIGINT, fastmf_sigint_previous);
    return fastmf_sigint_flag != 0;
}
#else
static struct sigaction fastmf_sigint_previous;

static int fastmf_sigint_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fastmf_sigint_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: nothing here blocks in a system call */
    fastmf_sigint_flag = 0;
    return sigaction(SIGINT, &sa, &fastmf_sigint_previous) == 0;
}

static int fastmf_sigint_restore(void)
{
    sigaction(SIGINT, &fastmf_sigint_previous, NULL);
    return fastmf_sigint_flag != 0;
}
#endif

static const fastmf_interrupt *fastmf_sigint_flag_ptr(void)
{
    return &fastmf_sigint_flag;
}

#endif
