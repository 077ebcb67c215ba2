/* base/utf8.h — the one UTF-8 check of the library, for text that goes
 * out where readers want UTF-8 (the dump's names, /metrics, /actors). */
#ifndef TR_BASE_UTF8_H
#define TR_BASE_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence at s, or 0 (RFC 3629:
 * no stray continuation, no overlong form, no surrogate, nothing past
 * U+10FFFF). Reads no further than a byte that ends the sequence early,
 * so a NUL-terminated string is safe. */
static inline size_t tr__utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80                 ? 1
               : c >= 0xc2 && c <= 0xdf ? 2
               : (c & 0xf0) == 0xe0     ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) || /* overlong; surrogate */
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))    /* overlong; too big */
        return 0;
    return n;
}

#endif
