/*
 * graceful-init: the init's wait-forward-reap loop without an interpreter.
 *
 * graceful's init (init.py) forks the app, then replaces its own process image with
 * this program: the app keeps the interpreter it already started (no second start-up),
 * and the init stops carrying one (about 10 MB of RSS, 4 MB of it counted against the
 * container, and the exit of a Python process). Everything the loop relies on survives
 * the exec: the app is still our child, the blocked signals and the pending ones stay
 * as they were, and so does the child-subreaper flag (prctl(2)).
 *
 * It does what the Init class in init.py does, line for line, and init.py stays the
 * fallback wherever this program was not built. Arguments (all given by init.py):
 *
 *   graceful-init APP PID1 KILL_AFTER EXIT_AFTER STOP_SIGNALS THRESHOLD JSON WHO JSON_TAIL
 *
 * APP the app's pid; PID1 1 when PID 1, else 0 (a subreaper); KILL_AFTER and
 * EXIT_AFTER seconds from the first stop signal to the app's SIGKILL and to our own
 * end; STOP_SIGNALS the extra stop signals, comma separated (or "-"); THRESHOLD the
 * index of the lowest level logged (0 DEBUG .. 4 CRITICAL); JSON 1 for JSON lines;
 * WHO the text lines' speaker ("graceful"); JSON_TAIL what follows the message in a
 * JSON line (", \"pid\": 1}").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILL_RESERVE 0.1 /* _core/deadline.py: SIGKILL this long before a deadline */
#define MAX_PIDS 65536

enum { DEBUG, INFO };

static pid_t app;
static int pid1;
static double kill_after, exit_after;
static int threshold, json;
static const char *who, *json_tail;
static sigset_t waited;
static int stop_signals[64];
static int n_stop_signals;

static double kill_app_at = -1, exit_by = -1; /* -1: not set */
static int app_status, app_done;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One line on stderr, formatted as graceful's other lines (_speak.leveled). */
static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO"};
    char message[512], stamp[64], line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;
    if (level < threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    if (json) {
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof line,
                     "{\"time\": \"%s.%03ldZ\", \"level\": \"%s\", \"logger\": \"graceful\","
                     " \"message\": \"%s\"%s\n",
                     stamp, ts.tv_nsec / 1000000, names[level], message, json_tail);
    } else {
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
        n = snprintf(line, sizeof line, "%s,%03ld %s %s: %s\n", stamp, ts.tv_nsec / 1000000,
                     who, names[level], message);
    }
    if (n > (int)sizeof line - 1)
        n = sizeof line - 1;
    if (write(2, line, n) < 0) { /* nothing to do about it */
    }
}

/* The next signal taken, 0 when `until` (monotonic seconds, -1: never) passed. */
static int wait_signal(double until) {
    for (;;) {
        siginfo_t info;
        int sig;
        if (until < 0) {
            sig = sigwaitinfo(&waited, &info);
        } else {
            double left = until - now();
            struct timespec ts;
            if (left <= 0)
                return 0;
            ts.tv_sec = (time_t)left;
            ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
            sig = sigtimedwait(&waited, &info, &ts);
            if (sig < 0 && errno == EAGAIN)
                return 0;
        }
        if (sig > 0)
            return sig;
        /* EINTR (a stopped-and-continued init): wait again */
    }
}

/* Collect every zombie child; 0 once there is no child left at all. */
static int reap(void) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return 0; /* ECHILD */
        }
        if (pid == 0)
            return 1;
        if (pid == app) {
            app_status = status;
            app_done = 1;
        }
    }
}

static int is_stop_signal(int sig) {
    if (sig == SIGTERM || sig == SIGINT)
        return 1;
    for (int i = 0; i < n_stop_signals; i++)
        if (stop_signals[i] == sig)
            return 1;
    return 0;
}

static void forward(int sig) {
    kill(app, sig); /* ESRCH: the app is gone already, its SIGCHLD is on the way */
    if (is_stop_signal(sig) && kill_app_at < 0) {
        double t = now();
        kill_app_at = t + kill_after;
        exit_by = t + exit_after;
    }
}

/* The pids of /proc/PID/task/TID/children for every thread of PID, appended. */
static int children_of(pid_t pid, pid_t *out, int n) {
    char path[64];
    DIR *tasks;
    struct dirent *entry;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    tasks = opendir(path);
    if (tasks == NULL)
        return n;
    while ((entry = readdir(tasks)) != NULL && n < MAX_PIDS) {
        char file[320];
        FILE *f;
        long child;
        if (entry->d_name[0] == '.')
            continue;
        snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid, entry->d_name);
        f = fopen(file, "re");
        if (f == NULL)
            continue;
        while (n < MAX_PIDS && fscanf(f, "%ld", &child) == 1)
            out[n++] = (pid_t)child;
        fclose(f);
    }
    closedir(tasks);
    return n;
}

static int is_zombie(pid_t pid) {
    char path[64], buf[512], *end;
    FILE *f;
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 1; /* gone */
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    end = strrchr(buf, ')');
    return end == NULL || end[1] == '\0' || end[2] == 'Z';
}

/* Living descendants of this process (children.descendant_pids). */
static int descendants(pid_t *found) {
    static pid_t todo[MAX_PIDS];
    int n_todo = children_of(getpid(), todo, 0), n = 0;
    while (n_todo > 0 && n < MAX_PIDS) {
        pid_t pid = todo[--n_todo];
        if (is_zombie(pid))
            continue;
        found[n++] = pid;
        n_todo = children_of(pid, todo, n_todo);
    }
    return n;
}

static int signal_all(int sig) {
    static pid_t pids[MAX_PIDS];
    int n = descendants(pids), count = 0;
    if (pid1) {
        if (kill(-1, sig) < 0) /* every process of the namespace but ourselves */
            return 0;
        return n;
    }
    for (int i = 0; i < n; i++)
        if (kill(pids[i], sig) == 0)
            count++;
    return count;
}

/* Reap until no child is left (1) or `until` passed (0). */
static int wait_for_none(double until) {
    while (reap()) {
        int sig = wait_signal(until);
        if (sig == 0)
            return !reap();
        if (sig != SIGCHLD)
            signal_all(sig);
    }
    return 1;
}

static void stop_the_rest(void) {
    int count;
    if (!reap())
        return;
    if (exit_by < 0) /* the app ended on its own: the window starts now */
        exit_by = now() + exit_after;
    count = signal_all(SIGTERM);
    say(INFO, "init: the app has exited; %d process(es) left, sent SIGTERM", count);
    if (wait_for_none(exit_by - KILL_RESERVE))
        return;
    count = signal_all(SIGKILL);
    say(INFO, "init: %d process(es) still running at the deadline; sent SIGKILL", count);
    wait_for_none(exit_by);
}

static int exit_code(int status) {
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    static const int not_forwarded[] = {SIGKILL, SIGSTOP, SIGCHLD, SIGTTIN, SIGTTOU, SIGSEGV,
                                        SIGBUS,  SIGFPE,  SIGILL,  SIGTRAP, SIGSYS,  SIGABRT};
    int code;
    if (argc != 10) {
        fprintf(stderr, "graceful-init: started by graceful's init only (%d arguments)\n", argc);
        return 2;
    }
    app = (pid_t)atol(argv[1]);
    pid1 = atoi(argv[2]);
    kill_after = atof(argv[3]);
    exit_after = atof(argv[4]);
    if (strcmp(argv[5], "-") != 0) {
        char *list = argv[5], *item;
        while ((item = strsep(&list, ",")) != NULL && n_stop_signals < 64)
            stop_signals[n_stop_signals++] = atoi(item);
    }
    threshold = atoi(argv[6]);
    json = atoi(argv[7]);
    who = argv[8];
    json_tail = argv[9];

    /* The signals waited for: what init.py blocked before the fork (still blocked). */
    sigemptyset(&waited);
    for (int sig = 1; sig < 32; sig++)
        sigaddset(&waited, sig);
    for (size_t i = 0; i < sizeof not_forwarded / sizeof *not_forwarded; i++)
        sigdelset(&waited, not_forwarded[i]);
    sigaddset(&waited, SIGCHLD);

    while (!app_done) {
        int sig = wait_signal(kill_app_at);
        if (sig == 0) { /* the deadline: the app's own watchdog did not end it */
            say(INFO, "init: the app (pid %d) outlived the grace period; sending SIGKILL",
                (int)app);
            kill(app, SIGKILL);
            kill_app_at = -1; /* wait for its SIGCHLD now, without a timeout */
        } else if (sig == SIGCHLD) {
            reap();
        } else {
            forward(sig);
        }
    }
    code = exit_code(app_status);
    stop_the_rest();
    say(DEBUG, "init: exiting with code %d", code);
    _exit(code);
}
