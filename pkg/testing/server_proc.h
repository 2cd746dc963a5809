/* Test support: the process plumbing shared by the launchers of real servers (pg_server.c,
 * redis_server.c): a free loopback port, fork/exec tied to the parent's life, waiting for
 * readiness, stopping, and removing the temporary directory. Only libc. */
#ifndef MK_TESTING_SERVER_PROC_H
#define MK_TESTING_SERVER_PROC_H

#include <sys/types.h>

/* How mk_testing_spawn runs the child. All pointers are borrowed for the call only. */
typedef struct mk_testing_spawn_opts {
    long uid, gid;        /* switch to these in the child (both >= 0), or -1: stay as we are */
    const char *dir;      /* chdir here before exec; NULL: keep ours */
    const char *log_path; /* stdout and stderr appended here (created 0600); NULL: /dev/null */
    int death_signal;     /* sent to the child when the thread that forked it dies */
} mk_testing_spawn_opts_t;

/* A loopback TCP port nobody holds right now (the kernel's choice for port 0), or -1 with errno
 * set. Someone else may take it before the server binds it: callers retry. */
int mk_testing_free_port(void);

/* Forks and execs argv[0] (an absolute path; argv ends with NULL) with stdin on /dev/null, the
 * signal mask cleared and descriptors above 2 closed. The child's pid goes to *pid. 0 on
 * success, -1 with the reason printed to stderr prefixed by who. A child that cannot switch
 * user, chdir or open its log exits 126; one whose exec fails exits 127. */
int mk_testing_spawn(const char *who, const char *const *argv, const mk_testing_spawn_opts_t *o,
                     pid_t *pid);

/* Polls ready(arg) every 10 ms until it returns nonzero (0), child pid exits (-1, its wait
 * status in *status; reaped) or timeout_ms pass (-2; the child still runs). */
int mk_testing_wait_ready(pid_t pid, int timeout_ms, int (*ready)(void *arg), void *arg,
                          int *status);

/* Sends sig to pid and reaps it; after timeout_ms sends SIGKILL and waits. 1 when it had to be
 * killed, else 0. pid <= 0 is a no-op returning 0. */
int mk_testing_stop_pid(pid_t pid, int sig, int timeout_ms);

/* Sleeps ms milliseconds, resuming after signals. */
void mk_testing_sleep_ms(int ms);

/* Removes dir and everything under it, best effort (symlinks are not followed). */
void mk_testing_rmtree(const char *dir);

#endif
