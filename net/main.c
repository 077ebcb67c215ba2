/* net/main.c — a program's main in one call (tr_main, troupe/runtime.h).
 *
 * It sits at the top of the stack because it uses every layer: the
 * runtime, the signal watch of the reactor and the descriptor limit of a
 * server. What it does is what every example's main did by hand, in the
 * same order: the limit first (a server's listener must see it), the
 * signals before `start` (so that their actors get the first turns and a
 * SIGINT during start-up already shuts down), then start, run, destroy.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "troupe.h"

/* The program's name for messages: argv[0]'s last component. */
static const char *program(int argc, char **argv)
{
    if (argc < 1 || argv == NULL || argv[0] == NULL)
        return "troupe";
    const char *slash = strrchr(argv[0], '/');
    return slash != NULL ? slash + 1 : argv[0];
}

int tr_main(const tr_config *cfg, int (*start)(tr_ctx *cx, int argc, char **argv), int argc,
            char **argv)
{
    const char *name = program(argc, argv);
    tr_runtime *rt = NULL;
    int err = start == NULL ? TR_EINVAL : tr_runtime_create(cfg, &rt);
    if (err == 0) {
        tr_fd_limit_raise(NULL); /* best effort: a lower limit still serves */
        err = tr_runtime_stop_on_signal(rt, SIGINT);
    }
    if (err == 0)
        err = tr_runtime_stop_on_signal(rt, SIGTERM);
    if (err == 0)
        err = start(tr_runtime_ctx(rt), argc, argv);
    fflush(stdout); /* what start printed ("listening on ...") leaves now */
    if (err == 0) {
        int ran = tr_runtime_run(rt);
        err = ran < 0 ? ran : 0;
    }
    if (rt != NULL)
        tr_runtime_destroy(rt);
    if (err != 0)
        fprintf(stderr, "%s: %s\n", name, tr_strerror(err));
    return err != 0;
}
