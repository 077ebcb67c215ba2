/* dist_fuzz.c — libFuzzer target for the distribution decoders
 * (dist/proto.c, dist/term.c): what a hostile peer controls.
 *
 * The first byte picks a role; the rest is what the peer sends. As the
 * acceptor, the bytes are cut into 2-byte frames and fed to the handshake
 * (answering "ok" when it asks); as the initiator likewise after our
 * send_name; once a handshake is up, or at once for role 2, the rest is
 * cut into 4-byte frames, each decoded as a control message and, for the
 * sends, its message as a troupe message; a frame with a distribution
 * header (131 first) goes through the fragment reader first (frag_rx.h),
 * and what it hands out whole is decoded the same way. Role 3 feeds
 * EPMD's replies.
 * Checked: nothing reads past the bytes given (ASan), a decoded message's
 * parts lie within its frame, and a frame is never taken past its limit.
 * The cookie is fixed so that a digest can be found only by luck. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dist/frag_rx.h"
#include "../dist/proto.h"
#include "troupe/msgtypes.h"

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "dist_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #c);                                                                  \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define MAX_FRAME (1u << 20)

/* A control message frame (pass-through, as the connection has it after
 * reading any distribution header). */
static void decode(const char *f, size_t body)
{
    tr__ctl c;
    if (body != 0 && tr__ctl_decode(f, body, &c) == 0 && c.msg != NULL) {
        CHECK(c.msg >= f && c.msg + c.msg_len == f + body);
        uint32_t type;
        const char *data;
        size_t len;
        tr__term_to_msg(c.msg, c.msg_len, &type, &data, &len);
        CHECK(data >= c.msg && data + len <= c.msg + c.msg_len);
        CHECK(type < TR_MSG_SYSTEM || type == TR_DIST_TERM);
    }
}

static void control(const uint8_t *p, size_t n)
{
    size_t at = 0, body;
    tr__frag_rx rx;
    memset(&rx, 0, sizeof rx);
    while (tr__dist_frame(p + at, n - at, 4, MAX_FRAME, &body) == 1) {
        CHECK(body <= MAX_FRAME && at + 4 + body <= n);
        /* An exact-size copy: a read past it is ASan's to see. */
        char *f = malloc(body + 1);
        memcpy(f, p + at + 4, body);
        const char *whole;
        size_t len;
        if (body != 0 && (uint8_t)f[0] == TR__VERSION_MAGIC) {
            int r = tr__frag_rx_take(&rx, MAX_FRAME, (const uint8_t *)f, body, &whole, &len);
            CHECK(rx.fin_bytes <= MAX_FRAME);
            if (r > 0) {
                CHECK(len >= 2 && whole[0] == 112);
                decode(whole, len);
            }
        } else {
            decode(f, body);
        }
        free(f);
        at += 4 + body;
    }
    tr__frag_rx_free(&rx);
}

static size_t handshake(bool initiator, const uint8_t *p, size_t n)
{
    tr__hs hs;
    uint8_t out[1024];
    size_t ol, at = 0, body;
    tr__hs_init(&hs, initiator, "fuzz@localhost", "cookie", 7, 12345, out, sizeof out, &ol);
    while (hs.state != TR__HS_UP && hs.state != TR__HS_FAILED &&
           tr__dist_frame(p + at, n - at, 2, 65535, &body) == 1) {
        uint8_t *m = malloc(body + 1);
        memcpy(m, p + at + 2, body);
        int r = tr__hs_step(&hs, m, body, out, sizeof out, &ol);
        CHECK(ol <= sizeof out);
        if (r == TR__HS_NAMED) {
            /* "alive" for an odd-sized name message: the input picks. */
            CHECK(strchr(hs.peer, '@') != NULL);
            CHECK(tr__hs_accept(&hs, body % 2 ? "alive" : "ok", out, sizeof out, &ol) == 0);
        } else if (r == TR__HS_ALIVE && initiator) {
            CHECK(tr__hs_alive(&hs, true, out, sizeof out, &ol) == 0);
        } else if (r == TR__HS_ALIVE) {
            CHECK(tr__hs_accept(&hs, "ok", out, sizeof out, &ol) == 0);
        }
        free(m);
        at += 2 + body;
    }
    return hs.state == TR__HS_UP ? at : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1, used;
    uint32_t creation;
    uint16_t port;
    switch (data[0] % 4) {
    case 0:
    case 1:
        used = handshake(data[0] % 4 == 1, p, n);
        control(p + used, n - used);
        break;
    case 2:
        control(p, n);
        break;
    default:
        (void)tr__epmd_alive2_resp(p, n, &creation);
        (void)tr__epmd_port_resp(p, n, &port);
        break;
    }
    return 0;
}
