/* test_tcp_faults.c — peers and the system failing the server: a storm of
 * resets, running out of descriptors, and raising the descriptor limit.
 *
 * The helpers, and how every network test runs its server and clients:
 * net_util.h. */
#include "net_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* 2,000 connections that connect and reset at once (half of them after
 * sending a little): every connection actor the server started ends, and
 * the server still answers a fresh client. Connection actors count
 * themselves connected in their first turn, which may come after a later
 * connection's: so the end is seen in the runtime's count of live actors,
 * which only falls once the listener has spawned them all. */
struct storm {
    uint16_t port;
    int count, first;
    int failed;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    for (int i = 0; i < s->count; i++) {
        int fd = cli_connect_raw(s->port, 0);
        if (fd < 0) {
            s->failed++;
            continue;
        }
        set_reset_on_close(fd);
        if ((s->first + i) % 2 == 1)
            (void)!send(fd, "0123456789abcdef0123456789abcdef", 32, MSG_NOSIGNAL);
        close(fd);
    }
    return NULL;
}

static uint64_t alive_now(tr_runtime *rt)
{
    tr_stats s;
    tr_runtime_stats(rt, &s);
    return s.actors_alive;
}

static void test_reset_storm(void)
{
    enum { THREADS = 4, PER = 500 };
    tr_fd_limit_raise(NULL);
    struct server srv;
    server_start(&srv, echo_raw, 0); /* sends may fail: the peers are gone */
    tr_stats before;
    tr_runtime_stats(srv.rt, &before);
    struct storm s[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (struct storm){.port = srv.port, .count = PER, .first = i * PER};
        t[i] = tt_thread(storm_main, &s[i]);
    }
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        tt_join(t[i]);
        failed += s[i].failed;
    }
    TT_EQ(failed, 0);
    /* The accept queue is FIFO: once this client is served, every storm
     * connection before it has been accepted and its actor spawned. Then
     * only the client's is left. */
    int fd = cli_connect(srv.port);
    CU_ASSERT(cli_echo(fd, 1, 1000));
    WAIT_FOR(alive_now(srv.rt) == before.actors_alive + 1);
    long conns = atomic_load(&srv.st->connected);
    TT_EQ(atomic_load(&srv.st->closed), conns - 1);
    printf("(%ld of %d accepted, %ld closed with an error) ", conns - 1, THREADS * PER,
           atomic_load(&srv.st->closed_neg));
    CU_ASSERT(conns >= 2 && conns <= THREADS * PER + 1);
    CU_ASSERT(cli_echo(fd, 2, 3000));
    close(fd);
    WAIT_FOR(atomic_load(&srv.st->closed) == atomic_load(&srv.st->connected));
    TT_NO_ERRORS();
    server_stop(&srv);
}

/* ---- running out of descriptors ------------------------------------------------ */

/* The descriptor limit that leaves exactly `free_slots` numbers free: new
 * descriptors take the lowest free numbers, and numbers open now (some may
 * be high, inherited from whoever started us) do not count. */
static rlim_t limit_leaving(int free_slots)
{
    static bool open_now[65536];
    memset(open_now, 0, sizeof open_now);
    DIR *d = opendir("/proc/self/fd");
    CU_ASSERT_FATAL(d != NULL);
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self && fd >= 0 && fd < 65536)
            open_now[fd] = true;
    }
    closedir(d);
    int n = 0;
    while (n < 65536 && free_slots > 0)
        if (!open_now[n++])
            free_slots--;
    return (rlim_t)n;
}

/* The child process of the storm: its sockets count against its own
 * limit, not the server's. Commands on `cmd`: 'C' + port + count: open
 * that many connections (and report how many opened); 'X': close them;
 * 'Q' (or the pipe closing): exit. Async-signal-safe calls only. */
static void storm_child(int cmd, int rep)
{
    static int fds[4096];
    int n = 0;
    for (;;) {
        unsigned char c[8];
        ssize_t r = read(cmd, c, 5);
        if (r <= 0 || c[0] == 'Q')
            break;
        if (c[0] == 'C') {
            uint16_t port = (uint16_t)(c[1] | c[2] << 8);
            int want = c[3] | c[4] << 8, ok = 0;
            struct sockaddr_in a = loopback(port);
            for (int i = 0; i < want && n < 4096; i++) {
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                if (fd < 0)
                    break;
                struct timeval tv = {.tv_sec = 10};
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
                    fds[n++] = fd;
                    ok++;
                } else {
                    close(fd);
                }
            }
            unsigned char out[2] = {(unsigned char)ok, (unsigned char)(ok >> 8)};
            if (write(rep, out, 2) != 2)
                break;
        } else if (c[0] == 'X') {
            for (int i = 0; i < n; i++)
                close(fds[i]);
            n = 0;
            if (write(rep, "x", 1) != 1)
                break;
        }
    }
    _exit(0);
}

/* Waits (a safety net) for n bytes from the storm child. */
static bool child_reply(int fd, unsigned char *buf, size_t n)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t got = 0;
    while (got < n && poll(&p, 1, (int)(WAIT_S * 1000)) == 1) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return got == n;
}

static void test_fd_exhaustion(void)
{
    enum { HEADROOM = 64, STORM = 300 };
    int cmd[2], rep[2];
    CU_ASSERT_FATAL(pipe2(cmd, O_CLOEXEC) == 0 && pipe2(rep, O_CLOEXEC) == 0);
    fflush(stdout);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        close(cmd[1]);
        close(rep[0]);
        storm_child(cmd[0], rep[1]);
    }
    close(cmd[0]);
    close(rep[1]);
    /* The child has its descriptors; from here this process has few. No
     * fatal assertion until the limit is restored below. */
    struct rlimit old;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &old) == 0);
    struct rlimit low = old;
    low.rlim_cur = limit_leaving(HEADROOM);
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);

    struct server srv;
    server_start(&srv, echo_raw, 0);
    int witness = cli_connect_raw(srv.port, 0);
    CU_ASSERT(witness >= 0);
    CU_ASSERT(witness >= 0 && cli_echo(witness, 11, 100));

    unsigned char c[5] = {'C', (unsigned char)srv.port, (unsigned char)(srv.port >> 8),
                          (unsigned char)STORM, (unsigned char)(STORM >> 8)};
    unsigned char okb[2] = {0, 0};
    bool stormed = witness >= 0 && write(cmd[1], c, 5) == 5 && child_reply(rep[0], okb, 2);
    CU_ASSERT(stormed);
    TT_EQ(okb[0] | okb[1] << 8, STORM);
    if (stormed) {
        /* Wait until the server has accepted all it can: the count stops
         * moving (a detection, not an assertion) below the storm. */
        long before = -1, now = atomic_load(&srv.st->connected);
        double give_up = tt_now() + WAIT_S;
        while ((now != before || now < 2) && tt_now() < give_up) {
            before = now;
            tt_sleep_ms(300);
            now = atomic_load(&srv.st->connected);
        }
        printf("(%ld of %d accepted at the limit) ", now - 1, STORM);
        CU_ASSERT(now < STORM + 1); /* the limit was reached */
        CU_ASSERT(now > 1);

        /* Full: the listener waits for descriptors without spinning. */
        double cpu0 = tt_cpu_seconds(), t0 = tt_now();
        tt_sleep_ms(500);
        double share = (tt_cpu_seconds() - cpu0) / (tt_now() - t0);
        if (share >= 0.25)
            printf("\n    %.0f%% of a core while out of descriptors\n", share * 100);
        CU_ASSERT(share < 0.25);
        printf("(%.1f%% of a core while full) ", share * 100);
        /* Connections already accepted are still served. */
        CU_ASSERT(cli_echo(witness, 12, 200));

        /* The storm ends: the server accepts the rest (each sees EOF and
         * closes), then a fresh client is served. */
        CU_ASSERT(write(cmd[1], "X....", 5) == 5 && child_reply(rep[0], okb, 1));
        WAIT_FOR(atomic_load(&srv.st->connected) == STORM + 1 &&
                 atomic_load(&srv.st->closed) == STORM);
        int fresh = cli_connect_raw(srv.port, 0);
        CU_ASSERT(fresh >= 0 && cli_echo(fresh, 13, 1000));
        if (fresh >= 0)
            close(fresh);
        close(witness);
        WAIT_FOR(atomic_load(&srv.st->closed) == STORM + 2);
        TT_EQ(atomic_load(&srv.st->closed_ok), STORM + 2);
    } else if (witness >= 0) {
        close(witness);
    }
    TT_NO_ERRORS();
    server_stop(&srv);

    CU_ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CU_ASSERT(write(cmd[1], "Q....", 5) == 5);
    close(cmd[1]);
    close(rep[0]);
    int status = 0;
    CU_ASSERT(waitpid(child, &status, 0) == child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* tr_fd_limit_raise, in a child so that this process keeps its limit: from
 * a soft limit of 64 up to the hard one (or fs.nr_open, the kernel's cap),
 * reported through *limit; a second call changes nothing. The child's exit
 * status names the first check that failed. */
static int fd_limit_child(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 10;
    if (rl.rlim_max <= 64)
        return 77; /* nothing to raise to */
    rlim_t want = rl.rlim_max;
    FILE *f = fopen("/proc/sys/fs/nr_open", "re");
    unsigned long cap = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &cap) == 1 && (rlim_t)cap < want)
            want = (rlim_t)cap;
        fclose(f);
    }
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 11;
    unsigned long now = 0;
    if (tr_fd_limit_raise(&now) != 0)
        return 12;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != want)
        return 13;
    if (now != (unsigned long)want)
        return 14;
    if (tr_fd_limit_raise(NULL) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
        rl.rlim_cur != want)
        return 15;
    return 0;
}

static void test_fd_limit_raise(void)
{
    struct rlimit before, after;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &before) == 0);
    fflush(stdout);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(fd_limit_child());
    int status = 0;
    CU_ASSERT_FATAL(waitpid(child, &status, 0) == child);
    CU_ASSERT_FATAL(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        printf("(hard limit of %lu: skipped) ", (unsigned long)before.rlim_max);
    else
        TT_EQ(WEXITSTATUS(status), 0);
    CU_ASSERT(getrlimit(RLIMIT_NOFILE, &after) == 0);
    TT_EQ(after.rlim_cur, before.rlim_cur);
}

/* accept(2) on Linux passes on network errors already pending on the
 * new connection (ENETDOWN, EHOSTUNREACH, ...), to be retried as EAGAIN:
 * each, made to happen once, costs that attempt only, and the connection
 * waiting behind it is accepted at once, not after the pause meant for
 * EMFILE (an hour here: they waited it out). */
static void test_accept_network_errors_retried_at_once(void)
{
    static const int errs[] = {ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                               EOPNOTSUPP, ENETUNREACH, ECONNABORTED, EPROTO};
    struct server srv;
    srv.st = stats_new();
    srv.rt = tt_runtime(2, 0);
    tr_tcp_listen_opts o = {.host = HOST, .retry_ns = 3600 * TR_SEC,
                            .handler = handler_for(echo_raw, srv.st, 0)};
    CU_ASSERT_FATAL(tr_tcp_listen(tr_runtime_ctx(srv.rt), &o, &srv.listener, &srv.port) == 0);
    CU_ASSERT_FATAL(tr_runtime_start(srv.rt) == 0);
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        tt_accept_fail_once(errs[i]);
        int fd = cli_connect(srv.port);
        set_timeouts(fd, WAIT_S);
        bool echoed = cli_echo(fd, 16, 1);
        if (!echoed)
            printf("\n    after %s: no echo\n", strerror(errs[i]));
        CU_ASSERT(echoed);
        TT_EQ(tt_accept_fail_once(0), 0); /* the failure was met */
        close(fd);
    }
    TT_NO_ERRORS();
    server_stop(&srv);
}

void register_tcp_faults_tests(void)
{
    CU_pSuite s = tt_suite("tcp_faults");
    tt_test(s, "2000_connect_and_reset_all_end_server_answers", test_reset_storm);
    tt_test(s, "out_of_descriptors_listener_waits_without_spinning", test_fd_exhaustion);
    tt_test(s, "fd_limit_raise_lifts_soft_limit_to_hard", test_fd_limit_raise);
    tt_test(s, "accept_network_errors_retried_at_once",
            test_accept_network_errors_retried_at_once);
}
