/* observe/buf.c — the growing text buffer the pages are written into. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/utf8.h"
#include "observe.h"

/* Room for n more bytes and a NUL; false (and oom) if it cannot grow. */
static bool reserve(tr__obuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap != 0 ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void tr__obuf_put(tr__obuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tr__obuf_printf(tr__obuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        tr__obuf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tr__obuf_free(tr__obuf *b)
{
    free(b->p);
    *b = (tr__obuf){0};
}

bool tr__obuf_escaped(tr__obuf *b, const char *str, int mode)
{
    const unsigned char *s = (const unsigned char *)str;
    bool replaced = false;
    while (*s != '\0') {
        size_t n = tr__utf8_len(s);
        if (n > 1) {
            tr__obuf_put(b, (const char *)s, n);
            s += n;
            continue;
        }
        unsigned c = *s++;
        if (c == '\\' || c == '"')
            tr__obuf_printf(b, "\\%c", (char)c);
        else if (c == '\n')
            tr__obuf_put(b, "\\n", 2);
        else if (n == 0 || (mode == TR__ESC_PROM && (c < 0x20 || c == 0x7f))) {
            tr__obuf_put(b, "?", 1);
            replaced = true;
        } else if (c < 0x20)
            tr__obuf_printf(b, "\\u%04x", c);
        else
            tr__obuf_put(b, (const char *)&s[-1], 1);
    }
    return replaced;
}
