/* net/outq.h — a connection's queue of output not yet written (internal).
 *
 * Bytes wait in chunks taken from the message pools (a chunk is a message
 * block whose payload holds it: 4 KiB for small writes, one block of the
 * exact size for a large one), so that a connection writing a little
 * every turn recycles warm blocks instead of calling malloc; the queue is
 * written with one sendmsg of up to 64 chunks at a time. Used by one
 * actor's turns only: no locking.
 */
#ifndef TR_NET_OUTQ_H
#define TR_NET_OUTQ_H

#include <stddef.h>

typedef struct tr__chunk tr__chunk;

typedef struct tr__outq {
    tr__chunk *head, *tail;
    size_t queued; /* bytes */
} tr__outq;

/* Queues len bytes. 0, or TR_ENOMEM (nothing queued). */
int tr__outq_append(tr__outq *q, const void *data, size_t len);

/* Writes as much as socket fd takes. 0 (all written, or the socket is
 * full), or -errno after a socket error (the queue is then emptied). */
int tr__outq_write(tr__outq *q, int fd);

/* Drops everything queued. */
void tr__outq_clear(tr__outq *q);

#endif
