/* net/outq.c — a connection's queue of output (outq.h). */
#include "outq.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../mailbox/msg.h"
#include "../sys/sys.h"
#include "troupe/error.h"

#define IOV_MAX_BATCH 64

struct tr__chunk {
    tr__chunk *next;
    size_t off, len, cap;
    unsigned char data[];
};

/* The bytes a chunk in a pooled message block holds (the largest pool
 * class is 4096 bytes, header included). */
#define CHUNK_ROOM (4096 - sizeof(tr_msg) - sizeof(tr__chunk))

static tr__chunk *chunk_new(size_t len)
{
    size_t cap = len > CHUNK_ROOM ? len : CHUNK_ROOM;
    if (cap > TR_MSG_MAX_LEN - sizeof(tr__chunk))
        return NULL;
    tr_msg *m = tr__msg_new(0, (uint32_t)(sizeof(tr__chunk) + cap));
    if (m == NULL)
        return NULL;
    tr__chunk *k = (tr__chunk *)m->data;
    k->next = NULL;
    k->off = 0;
    k->len = 0;
    k->cap = cap;
    return k;
}

static void chunk_free(tr__chunk *k)
{
    tr__msg_release((tr_msg *)((char *)k - offsetof(tr_msg, data)));
}

int tr__outq_append(tr__outq *q, const void *data, size_t len)
{
    if (q->tail != NULL && q->tail->cap - q->tail->len >= len) {
        memcpy(q->tail->data + q->tail->len, data, len);
        q->tail->len += len;
    } else {
        tr__chunk *k = chunk_new(len);
        if (k == NULL)
            return TR_ENOMEM;
        k->len = len;
        memcpy(k->data, data, len);
        if (q->tail != NULL)
            q->tail->next = k;
        else
            q->head = k;
        q->tail = k;
    }
    q->queued += len;
    return 0;
}

/* Drops the first `written` bytes. */
static void consume(tr__outq *q, size_t written)
{
    q->queued -= written;
    while (written > 0) {
        tr__chunk *k = q->head;
        size_t left = k->len - k->off;
        if (written < left) {
            k->off += written;
            return;
        }
        written -= left;
        q->head = k->next;
        if (q->head == NULL)
            q->tail = NULL;
        chunk_free(k);
    }
}

int tr__outq_write(tr__outq *q, int fd)
{
    while (q->head != NULL) {
        struct iovec iov[IOV_MAX_BATCH];
        int n = 0;
        for (tr__chunk *k = q->head; k != NULL && n < IOV_MAX_BATCH; k = k->next, n++) {
            iov[n].iov_base = k->data + k->off;
            iov[n].iov_len = k->len - k->off;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = tr__sys_sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            int err = -errno;
            tr__outq_clear(q);
            return err;
        }
        consume(q, (size_t)w);
    }
    return 0;
}

void tr__outq_clear(tr__outq *q)
{
    while (q->head != NULL) {
        tr__chunk *k = q->head;
        q->head = k->next;
        chunk_free(k);
    }
    q->tail = NULL;
    q->queued = 0;
}
