/* dist/frag_rx.h — a peer's frames with a distribution header, read back
 * as pass-through frames (internal).
 *
 * Pure functions on bytes, as proto.h's, so that the fuzzer reaches them:
 * a normal header without atom cache refs (131, 68, 0), which OTP sends
 * for every message once fragments are agreed, and fragmented messages
 * (erl_ext_dist.md, "Distribution Header for fragmented messages": 131,
 * 69 with the sequence id, the fragment count and no cache refs, then
 * 131, 70 frames, the id counting down to 1), put back together per
 * sequence, several at once, into the pass-through frame (112, 131
 * control message, 131 term) that tr__ctl_decode reads. Every sequence
 * under way counts against one budget for the connection.
 */
#ifndef TR_DIST_FRAG_RX_H
#define TR_DIST_FRAG_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sequence under way. */
typedef struct tr__fin {
    struct tr__fin *next;
    uint64_t seq, next_id; /* the fragment id expected next */
    bool ctl_open;         /* the control message ran past the first fragment */
    char *buf;
    size_t len, cap;
} tr__fin;

/* What one connection reads back; all zeros to start. */
typedef struct tr__frag_rx {
    tr__fin *fin;      /* the sequences under way */
    size_t fin_bytes;  /* their buffers, within the budget */
    char *out;         /* the last frame handed out */
    size_t out_cap;
} tr__frag_rx;

/* Results of tr__frag_rx_take besides 0 (a fragment taken, the message
 * not whole yet) and the negative codes. */
#define TR__FRAG_PLAIN 1 /* a 131,68 frame: *frame holds it as pass-through */
#define TR__FRAG_WHOLE 2 /* the last fragment: *frame holds the message */

/* Takes one frame body (after its 4-byte length, 131 first), with `max`
 * bytes for all sequences under way together. *frame lives until the next
 * call or tr__frag_rx_free. TR_EBADFRAME: not a header we read (atom cache
 * refs, which we never negotiate), a cut header, a control message cut
 * short (in a plain frame, or in a whole fragmented message: it may run
 * past the first fragment, as an exit reason past 64 KiB does), a
 * fragment of an unknown sequence or out of turn, a sequence id already
 * under way; TR_EMSGSIZE: past the budget, or a count announcing more;
 * TR_ENOMEM. After an error the connection is to close. */
int tr__frag_rx_take(tr__frag_rx *rx, size_t max, const unsigned char *p, size_t n,
                     const char **frame, size_t *len);
void tr__frag_rx_free(tr__frag_rx *rx);

#endif
