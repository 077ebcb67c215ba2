/* dist/frag_rx.c — frames with a distribution header, read back as
 * pass-through frames (frag_rx.h). */
#include "frag_rx.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "troupe/error.h"

#define FIRST_HDR 19 /* 131, 69, sequence, fragment count, atom cache refs (0) */
#define CONT_HDR  18 /* 131, 70, sequence, fragment id */
#define KEEP_OUT  ((size_t)256 << 10) /* a larger frame handed out is not kept */

static const char pass[2] = {112, (char)TR__VERSION_MAGIC};
static const char magic = (char)TR__VERSION_MAGIC;

static tr__fin **find(tr__frag_rx *rx, uint64_t seq)
{
    tr__fin **at = &rx->fin;
    while (*at != NULL && (*at)->seq != seq)
        at = &(*at)->next;
    return at;
}

static void drop(tr__frag_rx *rx, tr__fin **at)
{
    tr__fin *f = *at;
    *at = f->next;
    rx->fin_bytes -= f->cap;
    free(f->buf);
    free(f);
}

/* Appends n bytes to f, within the budget. */
static int append(tr__frag_rx *rx, size_t max, tr__fin *f, const void *p, size_t n)
{
    if (f->cap - f->len < n) {
        size_t need = f->len + n, others = rx->fin_bytes - f->cap;
        if (need > max || need > max - others)
            return TR_EMSGSIZE;
        size_t cap = 2 * f->cap > need ? 2 * f->cap : need;
        cap = cap <= max - others ? cap : need;
        char *grown = realloc(f->buf, cap);
        if (grown == NULL)
            return TR_ENOMEM;
        rx->fin_bytes = others + cap;
        f->buf = grown;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

/* The first fragment: a new sequence. Room is made for what its count
 * announces at this fragment's size; a count that announces more than
 * the budget is refused at once. The control message is usually whole
 * in it, and the magic goes between it and the term at once; one that
 * runs on (an exit reason past the fragment size) is found when the
 * message is whole (ctl_open). */
static int first(tr__frag_rx *rx, size_t max, uint64_t seq, uint64_t count,
                 const unsigned char *p, size_t n)
{
    size_t ctl = 0;
    int cut = tr__term_check((const char *)p, n, &ctl);
    if (count == 0 || *find(rx, seq) != NULL || cut < 0 || (cut > 0 && count == 1))
        return TR_EBADFRAME;
    if (rx->fin_bytes > max || count - 1 > max / (n != 0 ? n : 1) || 3 + n > max - rx->fin_bytes)
        return TR_EMSGSIZE;
    size_t room = max - rx->fin_bytes, want = 3 + (size_t)count * n;
    tr__fin *f = calloc(1, sizeof *f);
    if (f == NULL || (f->buf = malloc(want < room ? want : room)) == NULL) {
        free(f);
        return TR_ENOMEM;
    }
    f->seq = seq;
    f->next_id = count - 1;
    f->cap = want < room ? want : room;
    f->ctl_open = cut > 0;
    f->next = rx->fin;
    rx->fin = f;
    rx->fin_bytes += f->cap;
    if (f->ctl_open)
        ctl = n; /* all of it, as it comes */
    int err = append(rx, max, f, pass, sizeof pass);
    if (err == 0)
        err = append(rx, max, f, p, ctl);
    if (err == 0 && ctl < n)
        err = append(rx, max, f, &magic, 1);
    if (err == 0 && ctl < n)
        err = append(rx, max, f, p + ctl, n - ctl);
    return err;
}

/* The message is whole and its control message ran past the first
 * fragment: found now, and the magic put after it. */
static int close_ctl(tr__frag_rx *rx, size_t max, tr__fin *f)
{
    size_t ctl = 0, n = f->len - sizeof pass;
    if (tr__term_check(f->buf + sizeof pass, n, &ctl) != 0)
        return TR_EBADFRAME;
    if (ctl == n)
        return 0;
    int err = append(rx, max, f, &magic, 1); /* room for one more byte */
    if (err != 0)
        return err;
    char *term = f->buf + sizeof pass + ctl;
    memmove(term + 1, term, n - ctl);
    *term = magic;
    return 0;
}

/* 131, 68, 0, control message, [term]: the same as pass-through. */
static int plain(tr__frag_rx *rx, const unsigned char *p, size_t n, const char **frame,
                 size_t *len)
{
    size_t ctl = 0;
    if (n < 3 || p[2] != 0)
        return TR_EBADFRAME; /* atom cache refs: not negotiated */
    p += 3;
    n -= 3;
    if (tr__term_check((const char *)p, n, &ctl) != 0)
        return TR_EBADFRAME;
    if (rx->out_cap < n + 3) {
        free(rx->out);
        rx->out_cap = n + 3 > 4096 ? n + 3 : 4096;
        if ((rx->out = malloc(rx->out_cap)) == NULL) {
            rx->out_cap = 0;
            return TR_ENOMEM;
        }
    }
    char *b = rx->out;
    memcpy(b, pass, sizeof pass);
    memcpy(b + 2, p, ctl);
    *len = 2 + ctl;
    if (ctl < n) {
        b[(*len)++] = magic;
        memcpy(b + *len, p + ctl, n - ctl);
        *len += n - ctl;
    }
    *frame = b;
    return TR__FRAG_PLAIN;
}

int tr__frag_rx_take(tr__frag_rx *rx, size_t max, const unsigned char *p, size_t n,
                     const char **frame, size_t *len)
{
    if (rx->out_cap > KEEP_OUT) {
        free(rx->out);
        rx->out = NULL;
        rx->out_cap = 0;
    }
    if (n >= 2 && p[0] == TR__VERSION_MAGIC && p[1] == 68)
        return plain(rx, p, n, frame, len);
    bool is_first = n >= 2 && p[1] == 69;
    if (n < (is_first ? FIRST_HDR : CONT_HDR) || p[0] != TR__VERSION_MAGIC ||
        (p[1] != 69 && p[1] != 70))
        return TR_EBADFRAME;
    uint64_t seq = tr__get64(p + 2), id = tr__get64(p + 10);
    int err;
    if (is_first) {
        if (p[18] != 0)
            return TR_EBADFRAME; /* atom cache refs: not negotiated */
        err = first(rx, max, seq, id, p + FIRST_HDR, n - FIRST_HDR);
    } else {
        tr__fin *f = *find(rx, seq);
        err = f == NULL || f->next_id != id || id == 0 ? TR_EBADFRAME : 0;
        if (err == 0 && (err = append(rx, max, f, p + CONT_HDR, n - CONT_HDR)) == 0)
            f->next_id--;
    }
    tr__fin **at = find(rx, seq);
    if (err != 0 || (*at)->next_id != 0)
        return err;
    /* The last fragment: the message is whole, and handed out. */
    tr__fin *f = *at;
    if (f->ctl_open && (err = close_ctl(rx, max, f)) != 0)
        return err;
    free(rx->out);
    rx->out = f->buf;
    rx->out_cap = f->cap;
    *frame = f->buf;
    *len = f->len;
    f->buf = NULL;
    drop(rx, at);
    return TR__FRAG_WHOLE;
}

void tr__frag_rx_free(tr__frag_rx *rx)
{
    while (rx->fin != NULL)
        drop(rx, &rx->fin);
    free(rx->out);
    rx->out = NULL;
    rx->out_cap = 0;
}
