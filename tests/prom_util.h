/* prom_util.h — readers the metrics suites check the server's output
 * with, written from the specifications rather than from observe/: a
 * strict reader of the Prometheus text exposition format 0.0.4 and a
 * minimal JSON validator (RFC 8259).
 *
 * The reader accepts only what the format allows and requires: each line
 * a "# HELP name text", a "# TYPE name counter|gauge|histogram|summary|
 * untyped" or a sample "name{label="value",...} value [timestamp]"; valid
 * metric and label names (no "__" labels, none twice); label values with
 * only the escapes \\, \" and \n; numeric values (or +Inf, -Inf, NaN);
 * a TYPE before each family's first sample and each family's lines
 * together; no series twice; counters not negative; histograms with an le
 * on every bucket, les increasing, counts cumulative, a +Inf bucket equal
 * to _count, and a _sum. And a check that text is UTF-8. */
#ifndef TROUPE_TESTS_PROM_UTIL_H
#define TROUPE_TESTS_PROM_UTIL_H

#include "tests.h"

#define MAX_SERIES 4096

typedef struct series {
    char name[128];
    char labels[512]; /* canonical: k="v" (unescaped v), comma-separated, as sent */
    char le[256];     /* the le label of a bucket, else "" */
    double value;
} series;

typedef struct family {
    char name[128];
    char type[16];
    bool help, done; /* done: its samples have ended (another family began) */
} family;

typedef struct exposition {
    series s[MAX_SERIES];
    size_t n;
    family f[512];
    size_t nf;
    char err[256];
} exposition;

/* Reads text into e; false with the reason in e->err. */
bool exposition_read(exposition *e, const char *text);
family *prom_family_of(exposition *e, const char *name);
/* The series of that name with exactly these labels ("" for none; else
 * k="v" pairs, values unescaped, comma-separated, in the order sent). */
const series *prom_find(const exposition *e, const char *name, const char *labels);
/* Whether text is one JSON value and nothing more. */
bool json_valid(const char *text);
/* Whether text[0 .. len) is UTF-8 (RFC 3629: shortest forms, no
 * surrogates, nothing past U+10FFFF), which both formats require. */
bool utf8_valid(const char *text, size_t len);

#endif
