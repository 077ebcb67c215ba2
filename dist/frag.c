/* dist/frag.c — what goes out on an up connection: distribution headers,
 * big messages in fragments, and the bound on a node connection's output.
 *
 * Out. To a peer that said DFLAG_FRAGMENTS (OTP does) every frame carries
 * a distribution header without atom cache refs (131,68,0, the control
 * message and term after it without their 131s): OTP reads nothing else
 * once fragments are agreed. A frame whose control message and term come
 * to more than FRAG_SIZE bytes goes out in fragments (erl_ext_dist.md,
 * "Distribution Header for fragmented messages"): 131,69 with the sequence
 * id, the fragment count and no cache refs, the control message and the
 * start of the term; then 131,70 frames with the rest, the fragment id
 * counting down to 1. Such a message waits in the connection's output
 * queue (c->oq) and its fragments are handed to the socket a few at a
 * time, as it drains, so that ticks and other senders' small frames, which
 * go to the socket at once, wait behind a few fragments, not behind
 * 64 MiB. What a sender sends while one of its frames is in the queue
 * joins the queue behind it (Erlang's order between two processes, and "a
 * process must complete the sending of a fragmented message before it can
 * start sending any other").
 *
 * The bound. The queue and the bytes the socket has not taken yet count
 * together; past the node's busy limit the connection holds its senders
 * (actors/context.h, tr__cx_hold_senders): a local actor that sends to it
 * then waits as it would for any overloaded actor, until the output has
 * drained under the limit. It holds only while an event is sure to come:
 * the TCP layer's TR_TCP_UNTHROTTLED (told after TR_TCP_THROTTLED) or our
 * own TR__DIST_MORE.
 *
 * In: dist/frag_rx.c.
 */
#include <stdlib.h>
#include <string.h>

#include "../actors/context.h"
#include "../net/net.h"
#include "conn.h"

/* Fragment size: the control message and term bytes one fragment
 * carries. 64 KiB as Erlang's own: a tick waits behind at most a few
 * (microseconds on a local link, a few milliseconds at 100 Mbit/s), and
 * the 22 bytes of framing each cost 0.03 %. */
#define FRAG_SIZE ((size_t)64 << 10)
/* Socket output kept queued while fragments wait: a few fragments, so
 * that the socket never runs dry between two of our turns. */
#define FEED_MAX (4 * FRAG_SIZE)

#define FIRST_HDR 19 /* 131, 69, sequence, fragment, atom cache refs (0) */
#define CONT_HDR  18 /* 131, 70, sequence, fragment */

/* A frame waiting in the output queue: whole, or to go in fragments. */
typedef struct tr__fout {
    struct tr__fout *next;
    tr_pid from;
    ei_x_buff x;   /* the frame as encoded: length, 112, 131 control, 131 term */
    bool frag;
    size_t ctl_at, ctl_len, msg_at, msg_len; /* frag: the stream's two parts in x */
    uint64_t seq, left; /* frag: its sequence, fragments not yet sent */
    size_t done;        /* frag: stream bytes sent */
} tr__fout;

/* How many of the queue's frames a sender has there. */
typedef struct tr__fsender {
    tr_pid from;
    size_t n;
} tr__fsender;

/* For the tests: the largest output a connection had queued, how many
 * times connections began holding their senders, sequences sent and
 * received whole. */
static uint64_t out_peak, holds, seqs_out, seqs_in;

void tr__dist_frag_took(void)
{
    ck_pr_inc_64(&seqs_in);
}

void tr__dist_frag_counts(uint64_t *out, uint64_t *in)
{
    *out = ck_pr_load_64(&seqs_out);
    *in = ck_pr_load_64(&seqs_in);
}

size_t tr__dist_out_peak(bool reset)
{
    return (size_t)(reset ? ck_pr_fas_64(&out_peak, 0) : ck_pr_load_64(&out_peak));
}

uint64_t tr__dist_holds(void)
{
    return ck_pr_load_64(&holds);
}

void tr__frag_tcp_opts(size_t busy_limit, tr_tcp_opts *o)
{
    /* The events tell when the socket has drained (TR_TCP_UNTHROTTLED);
     * reading goes on whatever: two nodes writing much to each other
     * must not both stop reading. */
    o->high_water = busy_limit / 2 < FEED_MAX ? busy_limit / 2 : FEED_MAX;
    o->low_water = o->high_water / 4;
    o->keep_reading = 1;
    /* Never reached while senders are held: a safety net, not the bound. */
    o->max_output = 4 * (size_t)TR__DIST_FRAME_MAX;
}

/* ---- the senders with frames in the queue ---- */

static tr__fsender *sender(tr__dconn *c, tr_pid from)
{
    for (size_t i = 0; i < c->nqs; i++)
        if (c->qs[i].from == from)
            return &c->qs[i];
    return NULL;
}

/* An entry for the encoded frame x from c->out_from, which takes x's
 * buffer (x is left without one); or NULL when out of memory (x as it
 * was). */
static tr__fout *fout_of(const tr__dconn *c, ei_x_buff *x)
{
    tr__fout *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->from = c->out_from;
    o->x = *x;
    *x = (ei_x_buff){0};
    return o;
}

/* The largest encoding buffer a connection keeps between frames: a big
 * message's is let go once its bytes are in the socket's queue. */
enum { ENC_KEEP_MAX = 64 * 1024 };

bool tr__frag_enc(tr__dconn *c)
{
    /* ei_x_new's buffer is 100 bytes; most frames want a little more. */
    if (c->enc.buff == NULL && (c->enc.buff = malloc(256)) != NULL)
        c->enc.buffsz = 256;
    c->enc.index = 0;
    return c->enc.buff != NULL;
}

/* Puts o at the queue's tail, or frees it (TR_ENOMEM). */
static int enqueue(tr__dconn *c, tr__fout *o)
{
    tr__fsender *s = sender(c, o->from);
    if (s == NULL) {
        if (!tr__dist_grow((void **)&c->qs, &c->qs_cap, c->nqs, sizeof *c->qs)) {
            ei_x_free(&o->x);
            free(o);
            return TR_ENOMEM;
        }
        s = &c->qs[c->nqs++];
        *s = (tr__fsender){o->from, 0};
    }
    s->n++;
    o->next = NULL;
    if (c->oq_tail != NULL)
        c->oq_tail->next = o;
    else
        c->oq = o;
    c->oq_tail = o;
    c->oq_bytes += o->frag ? o->ctl_len + o->msg_len : (size_t)o->x.index;
    return 0;
}

static void dequeue(tr__dconn *c)
{
    tr__fout *o = c->oq;
    c->oq = o->next;
    if (c->oq == NULL)
        c->oq_tail = NULL;
    tr__fsender *s = sender(c, o->from);
    if (s != NULL && --s->n == 0)
        *s = c->qs[--c->nqs];
    ei_x_free(&o->x);
    free(o);
}

/* ---- out ---- */

/* Copies n stream bytes from offset `at` (control message, then term). */
static void copy_stream(const tr__fout *o, size_t at, size_t n, unsigned char *out)
{
    const unsigned char *b = (const unsigned char *)o->x.buff;
    if (at < o->ctl_len) {
        size_t k = o->ctl_len - at < n ? o->ctl_len - at : n;
        memcpy(out, b + o->ctl_at + at, k);
        out += k;
        at += k;
        n -= k;
    }
    memcpy(out, b + o->msg_at + (at - o->ctl_len), n);
}

/* Hands the next fragment of o to the socket. */
static int send_fragment(tr_ctx *cx, tr__dconn *c, tr__fout *o)
{
    size_t total = o->ctl_len + o->msg_len;
    size_t n = total - o->done < FRAG_SIZE ? total - o->done : FRAG_SIZE;
    bool first = o->done == 0;
    size_t hdr = first ? FIRST_HDR : CONT_HDR;
    if (c->scratch == NULL && (c->scratch = malloc(4 + FIRST_HDR + FRAG_SIZE)) == NULL)
        return TR_ENOMEM;
    unsigned char *p = c->scratch;
    uint32_t len = (uint32_t)(hdr + n);
    tr__put32(p, len);
    p[4] = TR__VERSION_MAGIC;
    p[5] = first ? 69 : 70;
    tr__put64(p + 6, o->seq);
    tr__put64(p + 14, o->left);
    if (first)
        p[22] = 0; /* no atom cache refs: the cache is not negotiated */
    copy_stream(o, o->done, n, p + 4 + hdr);
    o->done += n;
    o->left--;
    c->oq_bytes -= n;
    return tr_tcp_send(cx, p, 4 + hdr + n);
}

void tr__frag_feed(tr_ctx *cx, tr__dconn *c)
{
    int err = 0;
    while (err == 0 && c->oq != NULL && !c->closing && tr_tcp_queued(cx) <= FEED_MAX) {
        tr__fout *o = c->oq;
        if (o->frag) {
            err = send_fragment(cx, c, o);
            if (o->left != 0)
                continue;
        } else {
            c->oq_bytes -= (size_t)o->x.index;
            err = tr_tcp_send(cx, o->x.buff, (size_t)o->x.index);
        }
        dequeue(c);
    }
    if (err != 0) {
        tr__dconn_lost(cx, c, "output lost", err);
        return;
    }
    /* More waits. Once TR_TCP_THROTTLED has been told, TR_TCP_UNTHROTTLED
     * will be; until then the socket may drain within this turn, and no
     * event would say so: a message of our own comes back to feed it (at
     * most once more before the throttling is told). */
    if (c->oq != NULL && !c->throttled && !c->more_sent && !c->closing &&
        tr__socket_again(cx, TR__DIST_MORE) == 0)
        c->more_sent = true;
}

/* A whole frame (x, consumed): to the socket, or queued behind its
 * sender's others. */
static int put_whole(tr_ctx *cx, tr__dconn *c, ei_x_buff *x)
{
    if (sender(c, c->out_from) == NULL) {
        int err = tr_tcp_send(cx, x->buff, (size_t)x->index);
        if (x->buffsz > ENC_KEEP_MAX)
            ei_x_free(x);
        return err;
    }
    tr__fout *o = fout_of(c, x);
    return o != NULL ? enqueue(c, o) : TR_ENOMEM;
}

static bool fragments(const tr__dconn *c)
{
    return (c->hs.peer_flags & TR__DFLAG_FRAGMENTS) != 0;
}

/* A pass-through frame (length, 112, 131 control, [131 term]) in x
 * rewritten in place as one with a normal distribution header and no
 * atom cache refs (length, 131, 68, 0, control, [term]): once fragments
 * are agreed, OTP reads nothing else. The same length, but for a frame
 * without a term, which takes one byte more. */
static int to_dist_header(ei_x_buff *x, size_t ctl_end)
{
    size_t ctl_len = ctl_end - 6;
    if ((size_t)x->index == ctl_end && ei_x_append_buf(x, "", 1) != 0)
        return TR_ENOMEM;
    unsigned char *b = (unsigned char *)x->buff;
    memmove(b + 7, b + 6, ctl_len);
    b[4] = TR__VERSION_MAGIC;
    b[5] = 68;
    b[6] = 0;
    return tr__ctl_finish(x);
}

int tr__frag_out(tr_ctx *cx, tr__dconn *c, ei_x_buff *x, size_t ctl_end)
{
    size_t ctl_at = 6, msg_at = ctl_end + 1; /* past the length, 112, and each 131 */
    size_t len = (size_t)x->index;
    bool big = msg_at < len && len - 6 - 1 > FRAG_SIZE && fragments(c) &&
               ctl_end - ctl_at <= FRAG_SIZE;
    if (!big) {
        int err = fragments(c) ? to_dist_header(x, ctl_end) : 0;
        return err == 0 ? put_whole(cx, c, x) : err;
    }
    tr__fout *o = fout_of(c, x);
    if (o == NULL)
        return TR_ENOMEM;
    o->frag = true;
    o->ctl_at = ctl_at;
    o->ctl_len = ctl_end - ctl_at;
    o->msg_at = msg_at;
    o->msg_len = len - msg_at;
    o->seq = ++c->next_seq;
    o->left = (o->ctl_len + o->msg_len + FRAG_SIZE - 1) / FRAG_SIZE;
    int err = enqueue(c, o);
    if (err != 0)
        return err;
    ck_pr_inc_64(&seqs_out);
    tr__frag_feed(cx, c);
    return 0;
}

void tr__frag_hold(tr_ctx *cx, tr__dconn *c)
{
    size_t out = tr_tcp_queued(cx) + c->oq_bytes;
    /* The tests' peak, kept only near the limit: the process-wide word is
     * not touched at the end of every turn of every connection. */
    if (out > c->busy_limit / 2) {
        uint64_t peak = ck_pr_load_64(&out_peak);
        while (out > peak && !ck_pr_cas_64_value(&out_peak, peak, out, &peak))
            ;
    }
    bool hold = c->up && !c->closing && out > c->busy_limit && (c->throttled || c->more_sent);
    if (hold && !c->holding)
        ck_pr_inc_64(&holds);
    c->holding = hold;
    tr__cx_hold_senders(cx, hold);
}

void tr__frag_free(tr__dconn *c)
{
    while (c->oq != NULL)
        dequeue(c);
    free(c->qs);
    free(c->scratch);
    ei_x_free(&c->enc);
    tr__frag_rx_free(&c->rx);
    c->qs = NULL;
    c->scratch = NULL;
    c->nqs = c->qs_cap = 0;
}
