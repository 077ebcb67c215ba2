/* prom_util.c — a strict reader of the Prometheus text format and a
 * minimal JSON validator (prom_util.h says what each checks). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prom_util.h"

static bool name_ok(const char *s, size_t n, bool metric)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool value_ok(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0) {
        *v = strcmp(s, "NaN") == 0 ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    if (*s == '\0' || (*s != '-' && *s != '+' && *s != '.' && (*s < '0' || *s > '9')))
        return false;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0';
}

family *prom_family_of(exposition *e, const char *name)
{
    for (size_t i = 0; i < e->nf; i++)
        if (strcmp(e->f[i].name, name) == 0)
            return &e->f[i];
    return NULL;
}

/* The family a sample belongs to: its own name, or for a histogram's
 * _bucket, _sum and _count the name without the suffix. */
static family *sample_family(exposition *e, const char *name, const char **suffix)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    *suffix = "";
    family *f = prom_family_of(e, name);
    if (f != NULL && strcmp(f->type, "histogram") != 0)
        return f;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(sfx[i]);
        if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
            family *h = prom_family_of(e, base);
            if (h != NULL && strcmp(h->type, "histogram") == 0) {
                *suffix = sfx[i];
                return h;
            }
        }
    }
    return NULL;
}

#define BAD(...) (snprintf(e->err, sizeof e->err, __VA_ARGS__), false)

static bool comment_line(exposition *e, char *line, family **current)
{
    bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        return BAD("a comment that is neither HELP nor TYPE: %s", line);
    char *name = line + 7, *sp = strchr(name, ' ');
    if (sp == NULL || !name_ok(name, (size_t)(sp - name), true))
        return BAD("a bad metric name in: %s", line);
    *sp = '\0';
    family *f = prom_family_of(e, name);
    if (f == NULL) {
        if (e->nf == sizeof e->f / sizeof e->f[0])
            return BAD("too many families");
        f = &e->f[e->nf++];
        snprintf(f->name, sizeof f->name, "%s", name);
    } else if (f->done || f != *current) {
        return BAD("family %s's lines are not together", name);
    }
    if (*current != NULL && *current != f)
        (*current)->done = true;
    *current = f;
    const char *rest = sp + 1;
    if (help) {
        if (f->help)
            return BAD("two HELP lines for %s", name);
        f->help = true;
        for (const char *p = rest; *p != '\0'; p++)
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                return BAD("a bad escape in the HELP of %s", name);
            else if (*p == '\\')
                p++;
        return true;
    }
    if (f->type[0] != '\0')
        return BAD("two TYPE lines for %s", name);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (int i = 0; i < 5; i++)
        if (strcmp(rest, types[i]) == 0) {
            snprintf(f->type, sizeof f->type, "%s", rest);
            return true;
        }
    return BAD("an unknown type for %s: %s", name, rest);
}

/* name{k="v",...} value [timestamp] */
static bool sample_line(exposition *e, char *line, family **current)
{
    if (e->n == MAX_SERIES)
        return BAD("too many series");
    series *s = &e->s[e->n];
    memset(s, 0, sizeof *s);
    char *p = line;
    while (*p != '\0' && *p != '{' && *p != ' ')
        p++;
    if (!name_ok(line, (size_t)(p - line), true) || (size_t)(p - line) >= sizeof s->name)
        return BAD("a bad metric name in: %s", line);
    memcpy(s->name, line, (size_t)(p - line));
    size_t ll = 0;
    char seen[16][64];
    int nseen = 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char *k = p;
            while (*p != '=' && *p != '\0')
                p++;
            if (*p != '=' || !name_ok(k, (size_t)(p - k), false) || p[1] != '"' ||
                (p - k >= 2 && k[0] == '_' && k[1] == '_') || p - k >= 64)
                return BAD("a bad label in: %s", line);
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(p - k), k);
            for (int i = 0; i < nseen; i++)
                if (strcmp(seen[i], key) == 0)
                    return BAD("label %s twice in: %s", key, line);
            if (nseen == 16)
                return BAD("too many labels");
            snprintf(seen[nseen++], 64, "%s", key);
            p += 2;
            char val[256];
            size_t vl = 0;
            for (; *p != '"'; p++) {
                if (*p == '\0' || *p == '\n')
                    return BAD("an unterminated label value in: %s", line);
                char c = *p;
                if (c == '\\') {
                    p++;
                    if (*p == '\\' || *p == '"')
                        c = *p;
                    else if (*p == 'n')
                        c = '\n';
                    else
                        return BAD("a bad escape in a label value: %s", line);
                }
                if (vl + 1 < sizeof val)
                    val[vl++] = c;
            }
            val[vl] = '\0';
            p++;
            if (strcmp(key, "le") == 0)
                snprintf(s->le, sizeof s->le, "%s", val);
            ll += (size_t)snprintf(s->labels + ll, sizeof s->labels - ll, "%s%s=\"%s\"",
                                   ll > 0 ? "," : "", key, val);
            if (ll >= sizeof s->labels)
                return BAD("labels too long");
            if (*p == ',')
                p++;
            else if (*p != '}')
                return BAD("a bad label list in: %s", line);
        }
        p++;
    }
    if (*p != ' ')
        return BAD("no value in: %s", line);
    char *val = ++p, *ts = strchr(val, ' ');
    if (ts != NULL) {
        *ts++ = '\0';
        double t;
        if (!value_ok(ts, &t) || strchr(ts, '.') != NULL)
            return BAD("a bad timestamp in: %s", line);
    }
    if (!value_ok(val, &s->value))
        return BAD("a bad value in: %s", line);
    const char *suffix;
    family *f = sample_family(e, s->name, &suffix);
    if (f == NULL || f->type[0] == '\0')
        return BAD("no TYPE before sample %s", s->name);
    if (f != *current)
        return BAD("sample %s is away from its family's lines", s->name);
    if (strcmp(f->type, "counter") == 0 && s->value < 0)
        return BAD("a negative counter: %s", line);
    if (strcmp(suffix, "_bucket") == 0 && s->le[0] == '\0')
        return BAD("a bucket without le: %s", line);
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, s->name) == 0 && strcmp(e->s[i].labels, s->labels) == 0)
            return BAD("series %s{%s} twice", s->name, s->labels);
    e->n++;
    return true;
}

const series *prom_find(const exposition *e, const char *name, const char *labels)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].labels, labels) == 0)
            return &e->s[i];
    return NULL;
}

/* Each histogram: buckets in increasing le, cumulative, ending at +Inf
 * equal to _count; a _sum. */
static bool histograms_ok(exposition *e)
{
    for (size_t i = 0; i < e->nf; i++) {
        family *f = &e->f[i];
        if (strcmp(f->type, "histogram") != 0)
            continue;
        char bucket[160], sum[160], count[160];
        snprintf(bucket, sizeof bucket, "%s_bucket", f->name);
        snprintf(sum, sizeof sum, "%s_sum", f->name);
        snprintf(count, sizeof count, "%s_count", f->name);
        double last_le = -INFINITY, last = 0;
        int buckets = 0;
        bool inf = false;
        for (size_t j = 0; j < e->n; j++) {
            if (strcmp(e->s[j].name, bucket) != 0)
                continue;
            double le;
            if (!value_ok(e->s[j].le, &le) || le <= last_le)
                return BAD("%s: le %s out of order", f->name, e->s[j].le);
            if (e->s[j].value < last)
                return BAD("%s: buckets not cumulative at le %s", f->name, e->s[j].le);
            last_le = le;
            last = e->s[j].value;
            inf = isinf(le) && le > 0;
            buckets++;
        }
        const series *c = prom_find(e, count, ""), *s = prom_find(e, sum, "");
        if (buckets == 0 || !inf)
            return BAD("%s: no +Inf bucket", f->name);
        if (c == NULL || s == NULL)
            return BAD("%s: no _count or _sum", f->name);
        if (c->value != last)
            return BAD("%s: +Inf bucket %g, _count %g", f->name, last, c->value);
    }
    return true;
}

/* Reads text into e; false with the reason in e->err. */
bool exposition_read(exposition *e, const char *text)
{
    memset(e, 0, sizeof *e);
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return BAD("the text does not end with a newline");
    char *copy = strdup(text), *save = NULL;
    family *current = NULL;
    bool ok = true;
    for (char *line = copy; ok && *line != '\0';) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        if (line[0] == '\0')
            ok = BAD("an empty line");
        else if (line[0] == '#')
            ok = comment_line(e, line, &current);
        else
            ok = sample_line(e, line, &current);
        line = nl + 1;
    }
    (void)save;
    free(copy);
    return ok && histograms_ok(e);
}

/* JSON: the tests' one strict checker (tests/json_check.c). */
bool json_valid(const char *text)
{
    return tt_json_check(text, strlen(text), NULL, NULL);
}

bool utf8_valid(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text, *end = s + len;
    while (s < end) {
        unsigned c = *s++;
        if (c < 0x80)
            continue;
        /* The lead byte: how many continuation bytes, its bits, and the
         * least code point that needs that many. */
        unsigned more;
        uint32_t cp, least;
        if (c >= 0xc0 && c <= 0xdf)
            more = 1, cp = c & 0x1f, least = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            more = 2, cp = c & 0x0f, least = 0x800;
        else if (c >= 0xf0 && c <= 0xf7)
            more = 3, cp = c & 0x07, least = 0x10000;
        else
            return false; /* a continuation byte, or 0xf8 and up */
        if ((size_t)(end - s) < more)
            return false;
        for (unsigned i = 0; i < more; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (*s & 0x3f);
        }
        if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}
