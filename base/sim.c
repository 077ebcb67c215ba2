/* base/sim.c — the simulation's process-wide state: options, seed, the
 * seeded stream, fault sites, the trace hash, and the check mode that runs
 * the rest of a program twice (base/sim.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "troupe/error.h"

#define VIRTUAL_START_NS UINT64_C(1000000000)

uint64_t tr__sim_clock;
uint64_t tr__sim_epoch;
tr__sim_opts tr__sim;
tr_sim_stats tr__sim_stats;

static unsigned entered;     /* runtimes in the simulation in progress */
static uint64_t rng_state;   /* splitmix64 */
static uint64_t hash;
static uint64_t last_seed, last_hash;
static int check_fd = -1;    /* a check run's child: where its hashes go */

static const char *const site_names[TR__FAULT_SITES] = {
    "spawn", "connect", "short_write", "timer_late", "reset",
};

/* splitmix64: a full-period 64-bit stream; one add and a mix a draw. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t tr__sim_rand(void)
{
    rng_state += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(rng_state);
}

uint64_t tr__sim_below(uint64_t n)
{
    /* Multiply-shift: no modulo bias worth speaking of for n << 2^64. */
    return (uint64_t)(((unsigned __int128)tr__sim_rand() * n) >> 64);
}

bool tr__sim_chance(double p)
{
    if (p <= 0)
        return false;
    return (double)(tr__sim_rand() >> 11) * 0x1.0p-53 < p;
}

bool tr__sim_fault(enum tr__fault_site site)
{
    if (!tr__sim_on() || !(tr__sim.faults & (1u << site)) || !tr__sim_chance(tr__sim.fault_p))
        return false;
    tr__sim_stats.faults++;
    tr__sim_mix(TR__EV_FAULT, site, tr__sim_clock);
    return true;
}

void tr__sim_mix(enum tr__sim_event kind, uint64_t a, uint64_t b)
{
    hash = mix64(hash ^ ((uint64_t)kind << 56) ^ a);
    hash = mix64(hash ^ b);
}

void tr__sim_advance(uint64_t ns)
{
    if (ns > tr__sim_clock)
        ck_pr_store_64(&tr__sim_clock, ns);
}

/* ---- options ---- */

static void defaults(tr__sim_opts *o, uint64_t seed)
{
    *o = (tr__sim_opts){
        .seed = seed,
        .sched = TR__SIM_UNIFORM,
        .depth = 3,
        .turn_ns = 2000,
        .limit_ns = UINT64_C(7) * 24 * 3600 * 1000000000,
        .lat_min_ns = 50 * 1000,
        .lat_mean_ns = 200 * 1000,
        .buffer = 64 * 1024,
        .rto_ns = UINT64_C(60) * 1000000000,
        .fault_p = 0.01,
    };
}

static bool number(const char *s, const char *end, double *out)
{
    char *stop;
    errno = 0;
    double v = strtod(s, &stop);
    /* Every option is below a billion in its unit (ns, us, s, bytes or a
     * probability): a bound that keeps the conversions defined. */
    if (stop != end || s == end || errno != 0 || !(v >= 0 && v <= 1e9))
        return false;
    *out = v;
    return true;
}

static bool sites(const char *s, const char *end, uint32_t *mask)
{
    *mask = 0;
    if (end - s == 4 && strncmp(s, "none", 4) == 0)
        return true;
    if (end - s == 3 && strncmp(s, "all", 3) == 0) {
        *mask = (1u << TR__FAULT_SITES) - 1;
        return true;
    }
    while (s < end) {
        const char *plus = memchr(s, '+', (size_t)(end - s));
        const char *e = plus != NULL ? plus : end;
        unsigned i = 0;
        while (i < TR__FAULT_SITES &&
               !(strlen(site_names[i]) == (size_t)(e - s) && strncmp(site_names[i], s, (size_t)(e - s)) == 0))
            i++;
        if (i == TR__FAULT_SITES)
            return false;
        *mask |= 1u << i;
        s = plus != NULL ? plus + 1 : end;
    }
    return true;
}

/* One key=value; false if it does not parse. */
static bool option(tr__sim_opts *o, const char *key, size_t klen, const char *v, const char *end)
{
#define KEY(k) (klen == sizeof(k) - 1 && strncmp(key, k, klen) == 0)
    double x, y;
    if (KEY("sched")) {
        if (end - v == 7 && strncmp(v, "uniform", 7) == 0)
            o->sched = TR__SIM_UNIFORM;
        else if (end - v == 3 && strncmp(v, "pct", 3) == 0)
            o->sched = TR__SIM_PCT;
        else
            return false;
        return true;
    }
    if (KEY("faults"))
        return sites(v, end, &o->faults_asked);
    if (KEY("latency")) {
        const char *colon = memchr(v, ':', (size_t)(end - v));
        if (colon == NULL || !number(v, colon, &x) || !number(colon + 1, end, &y) || y < x)
            return false;
        o->lat_min_ns = (uint64_t)(x * 1000);
        o->lat_mean_ns = (uint64_t)(y * 1000);
        return true;
    }
    if (!number(v, end, &x))
        return false;
    if (KEY("depth") && x >= 1 && x <= 64)
        o->depth = (unsigned)x;
    else if (KEY("turn") && x >= 1)
        o->turn_ns = (uint64_t)x;
    else if (KEY("limit") && x > 0)
        o->limit_ns = (uint64_t)(x * 1e9);
    else if (KEY("buffer") && x >= 1)
        o->buffer = (size_t)x;
    else if (KEY("rto") && x > 0)
        o->rto_ns = (uint64_t)(x * 1e9);
    else if (KEY("loss") && x <= 1)
        o->loss = x;
    else if (KEY("dup") && x <= 1)
        o->dup = x;
    else if (KEY("reorder") && x <= 1)
        o->reorder = x;
    else if (KEY("fault_p") && x <= 1)
        o->fault_p = x;
    else
        return false;
    return true;
#undef KEY
}

static int parse(tr__sim_opts *o, const char *s)
{
    while (s != NULL && *s != '\0') {
        const char *comma = strchr(s, ',');
        const char *end = comma != NULL ? comma : s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        if (eq == NULL || !option(o, s, (size_t)(eq - s), eq + 1, end)) {
            fprintf(stderr, "troupe: simulation: bad option '%.*s' (docs/simulation.md)\n",
                    (int)(end - s), s);
            return TR_EINVAL;
        }
        s = comma != NULL ? comma + 1 : end;
    }
    return 0;
}

static void print_options(const tr__sim_opts *o, bool picked)
{
    char faults[96] = "";
    for (unsigned i = 0; i < TR__FAULT_SITES; i++)
        if (o->faults & (1u << i))
            snprintf(faults + strlen(faults), sizeof faults - strlen(faults), "%s%s",
                     faults[0] != '\0' ? "+" : "", site_names[i]);
    fprintf(stderr,
            "troupe: simulation seed=%" PRIu64 "%s sched=%s depth=%u turn=%" PRIu64
            "ns limit=%gs latency=%g:%gus buffer=%zu loss=%g dup=%g reorder=%g rto=%gs"
            " faults=%s fault_p=%g\n",
            o->seed, picked ? " (picked)" : "", o->sched == TR__SIM_PCT ? "pct" : "uniform",
            o->depth, o->turn_ns, (double)o->limit_ns / 1e9, (double)o->lat_min_ns / 1e3,
            (double)o->lat_mean_ns / 1e3, o->buffer, o->loss, o->dup, o->reorder,
            (double)o->rto_ns / 1e9, faults[0] != '\0' ? faults : "none", o->fault_p);
}

/* ---- the check mode: the rest of the program, twice ---- */

/* One run of the rest of the program in a child: its hashes (one line a
 * simulation) are read, to its end, into *text (malloc'd). Returns its
 * wait status, -1 on failure, or -2 in the child. */
static int check_run(char **text)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        check_fd = fds[1];
        return -2; /* the child goes on with the program */
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n = 0;
    while (buf != NULL && ((n = read(fds[0], buf + len, cap - 1 - len)) > 0 ||
                           (n < 0 && errno == EINTR))) {
        if (n > 0 && (len += (size_t)n) == cap - 1) {
            char *more = realloc(buf, cap *= 2);
            if (more == NULL)
                free(buf);
            buf = more;
        }
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            status = -1;
    if (buf == NULL)
        return -1;
    buf[len] = '\0';
    *text = buf;
    return status;
}

/* The first line where a and b differ (1-based). */
static size_t first_difference(const char *a, const char *b)
{
    size_t line = 1;
    for (; *a != '\0' && *a == *b; a++, b++)
        line += *a == '\n';
    return line;
}

/* TROUPE_SIM_CHECK=1: this process forks twice; each child runs the rest
 * of the program and reports every simulation's hash; the parent compares
 * them all and exits — 0 only if both runs succeeded with the same
 * hashes. */
static void check_twice(uint64_t seed)
{
    char *a = NULL, *b = NULL;
    int sa = check_run(&a);
    if (sa == -2)
        return;
    int sb = sa < 0 ? -1 : check_run(&b);
    if (sb == -2) {
        free(a); /* the first run's hashes: the parent's, not this child's */
        return;
    }
    if (sa < 0 || sb < 0) {
        fprintf(stderr, "troupe: simulation check: cannot fork or read: %s\n", strerror(errno));
        exit(1);
    }
    bool same = strcmp(a, b) == 0;
    fprintf(stderr, "troupe: simulation check: seed=%" PRIu64 ": %s\n", seed,
            same ? "both runs gave the same trace hashes" : "the trace hashes DIFFER");
    if (!same)
        fprintf(stderr, "troupe: simulation check: first at simulation %zu of the run\n",
                first_difference(a, b));
    free(a);
    free(b);
    int code = WIFEXITED(sa) ? WEXITSTATUS(sa) : 128 + WTERMSIG(sa);
    int code_b = WIFEXITED(sb) ? WEXITSTATUS(sb) : 128 + WTERMSIG(sb);
    exit(!same ? 1 : code != 0 ? code : code_b);
}

/* ---- begin and end ---- */

/* A seed picked for TR_SIM_ANY_SEED: once a process, so that every
 * simulation of a program (and both runs of a check) uses the one
 * printed. */
static uint64_t picked_seed;

static uint64_t pick_seed(void)
{
    if (picked_seed != 0)
        return picked_seed;
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s &= (UINT64_C(1) << 53) - 1; /* exact in a double, short to type */
    return picked_seed = s != 0 ? s : 1;
}

int tr__sim_enter(uint64_t seed, const char *options)
{
    if (entered++ > 0)
        return 0;
    bool picked = seed == TR_SIM_ANY_SEED;
    tr__sim_opts o;
    defaults(&o, picked ? pick_seed() : seed);
    int err = parse(&o, options != NULL ? options : getenv("TROUPE_SIM"));
    if (err != 0) {
        entered--;
        return err;
    }
    const char *check = getenv("TROUPE_SIM_CHECK");
    if (check != NULL && strcmp(check, "1") == 0 && check_fd < 0)
        check_twice(o.seed);
    rng_state = o.seed;
    hash = mix64(o.seed);
    o.faults = 0;
    for (unsigned i = 0; i < TR__FAULT_SITES; i++)
        if ((o.faults_asked & (1u << i)) && (tr__sim_rand() & 1))
            o.faults |= 1u << i;
    tr__sim = o;
    memset(&tr__sim_stats, 0, sizeof tr__sim_stats);
    last_seed = o.seed;
    print_options(&o, picked);
    tr__sim_epoch++;
    ck_pr_store_64(&tr__sim_clock, VIRTUAL_START_NS);
    return 0;
}

bool tr__sim_leave(void)
{
    if (entered == 0 || --entered > 0)
        return false;
    tr__sim_stats.virtual_ns = tr__sim_clock - VIRTUAL_START_NS;
    last_hash = hash;
    ck_pr_store_64(&tr__sim_clock, 0);
    fprintf(stderr, "trace hash=%016" PRIx64 "\n", hash);
    if (check_fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof line, "%016" PRIx64 "\n", hash);
        if (write(check_fd, line, (size_t)n) != n)
            fprintf(stderr, "troupe: simulation check: cannot report the hash\n");
    }
    return true;
}

/* ---- public ---- */

uint64_t tr_sim_seed(void)
{
    return last_seed;
}

uint64_t tr_sim_hash(void)
{
    return tr__sim_on() ? hash : last_hash;
}

void tr_sim_stats_get(tr_sim_stats *out)
{
    if (out == NULL)
        return;
    *out = tr__sim_stats;
    if (tr__sim_on())
        out->virtual_ns = tr__sim_clock - VIRTUAL_START_NS;
}
