/* json_check.c — a strict JSON checker (RFC 8259) for the trace suite.
 *
 * Recursive descent over the whole grammar: one value with only
 * whitespace around it; objects, arrays, strings (escapes, no raw control
 * characters, \u with four hex digits), numbers (no leading zeros, no
 * leading '+', no bare '.'), true, false, null. It decodes nothing: the
 * sink sees each scalar member of an object as raw spans (a string's
 * without its quotes, escapes left as written) and each object's end,
 * with the object's depth (the outermost is 1), which is enough to count
 * a trace's events.
 */
#include "tests.h"

#include <string.h>

typedef struct parser {
    const char *p, *end;
    const tt_json_sink *sink;
    unsigned depth; /* objects open */
    unsigned nest;  /* objects and arrays open */
} parser;

static bool value(parser *s, const char **span, size_t *len);

static void skip_ws(parser *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(parser *s, char c)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != c)
        return false;
    s->p++;
    return true;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* At the opening quote; the span is the text between the quotes. */
static bool string(parser *s, const char **span, size_t *len)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *start = ++s->p;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p++;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (s->p >= s->end)
            return false;
        c = (unsigned char)*s->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++)
                if (s->p >= s->end || !is_hex(*s->p++))
                    return false;
        } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
            return false;
        }
    }
    if (s->p >= s->end)
        return false;
    *span = start;
    *len = (size_t)(s->p++ - start);
    return true;
}

static bool digits(parser *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool number(parser *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool word(parser *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool object(parser *s)
{
    s->depth++;
    if (!eat(s, '{'))
        return false;
    if (!eat(s, '}')) {
        do {
            const char *key, *val = NULL;
            size_t klen, vlen = 0;
            skip_ws(s);
            if (!string(s, &key, &klen) || !eat(s, ':') || !value(s, &val, &vlen))
                return false;
            if (val != NULL && s->sink != NULL && s->sink->member != NULL)
                s->sink->member(s->sink->arg, s->depth, key, klen, val, vlen);
        } while (eat(s, ','));
        if (!eat(s, '}'))
            return false;
    }
    if (s->sink != NULL && s->sink->end_object != NULL)
        s->sink->end_object(s->sink->arg, s->depth);
    s->depth--;
    return true;
}

static bool array(parser *s)
{
    if (!eat(s, '['))
        return false;
    if (eat(s, ']'))
        return true;
    do {
        const char *v;
        size_t n;
        if (!value(s, &v, &n))
            return false;
    } while (eat(s, ','));
    return eat(s, ']');
}

/* A value; a scalar's span in *span (left NULL for objects and arrays). */
static bool value(parser *s, const char **span, size_t *len)
{
    skip_ws(s);
    if (s->p >= s->end)
        return false;
    const char *start = s->p;
    bool ok;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->nest > 64) /* no stack overflow on hostile input */
            return false;
        ok = *s->p == '{' ? object(s) : array(s);
        s->nest--;
        return ok;
    case '"': return string(s, span, len);
    case 't': ok = word(s, "true"); break;
    case 'f': ok = word(s, "false"); break;
    case 'n': ok = word(s, "null"); break;
    default: ok = number(s); break;
    }
    *span = start;
    *len = (size_t)(s->p - start);
    return ok;
}

bool tt_json_check(const char *text, size_t len, const tt_json_sink *sink, size_t *error_at)
{
    parser s = {.p = text, .end = text + len, .sink = sink};
    const char *v;
    size_t n;
    bool ok = value(&s, &v, &n);
    skip_ws(&s);
    ok = ok && s.p == s.end;
    if (!ok && error_at != NULL)
        *error_at = (size_t)(s.p - text);
    return ok;
}
