/* Process plumbing for the test server launchers (see server_proc.h). */
#include "testing/server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void mk_testing_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mk_testing_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int mk_testing_spawn(const char *who, const char *const *argv, const mk_testing_spawn_opts_t *o,
                     pid_t *pid)
{
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "%s: fork: %s\n", who, strerror(errno));
        return -1;
    }
    if (child != 0) {
        *pid = child;
        return 0;
    }
    /* Child: only async-signal-safe calls between fork and exec. */
    if (o->uid >= 0 && o->gid >= 0) {
        if (setgroups(0, NULL) != 0 || setgid((gid_t)o->gid) != 0 || setuid((uid_t)o->uid) != 0)
            _exit(126);
    }
    /* After setuid: a credential change clears the parent-death signal. */
    prctl(PR_SET_PDEATHSIG, o->death_signal);
    if (getppid() != parent)
        _exit(127);
    /* A mask the test blocked would otherwise make the server deaf to our stop signal. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (o->dir != NULL && chdir(o->dir) != 0)
        _exit(126);
    int devnull = open("/dev/null", O_RDWR);
    int log =
        o->log_path != NULL ? open(o->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : devnull;
    if (devnull < 0 || log < 0)
        _exit(126);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int mk_testing_wait_ready(pid_t pid, int timeout_ms, int (*ready)(void *arg), void *arg,
                          int *status)
{
    long long deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return -1;
        if (ready(arg))
            return 0;
        mk_testing_sleep_ms(10);
    }
    return -2;
}

int mk_testing_stop_pid(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return 0;
    kill(pid, sig);
    long long deadline = now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return 0;
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 1;
        }
        mk_testing_sleep_ms(5);
    }
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void mk_testing_rmtree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
