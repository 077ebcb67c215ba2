/* net/limit.c — the descriptor limit a server runs with. */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "troupe/net.h"

#define KERNEL_NR_OPEN 1048576 /* fs.nr_open's default, should /proc be missing */

/* The kernel refuses a soft limit above fs.nr_open, whatever the hard
 * limit says (it may have been set before nr_open was lowered). */
static rlim_t nr_open(void)
{
    unsigned long n = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "re");
    if (f != NULL) {
        if (fscanf(f, "%lu", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n != 0 ? (rlim_t)n : KERNEL_NR_OPEN;
}

int tr_fd_limit_raise(unsigned long *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    rlim_t cap = nr_open();
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > cap ? cap : rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    if (limit != NULL)
        *limit = (unsigned long)rl.rlim_cur;
    return 0;
}
