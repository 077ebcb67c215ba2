// tests/cxx/hello.cc — troupe from C++: the headers compile as C++17 (with
// -Wall -Wextra -Werror), link against the C library, and a small program
// runs. A client actor asks a doubling server for the doubles of 1..N, half
// by copy (tr_send) and half zero-copy (tr_msg_alloc + tr_msg_send), and
// checks each answer; main checks that every answer came and that errors
// read the same from C++. Exits non-zero on any failure.
#include <troupe.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

// The header's layout as C sees it (mailbox/msg.c asserts the same).
static_assert(offsetof(tr_msg, data) == 32, "the header is 32 bytes in C++ too");
static_assert(sizeof(tr_msg) == 32, "no padding after the header");
static_assert(alignof(tr_msg) == 16, "the payload is 16-byte aligned");
static_assert(TROUPE_VERSION_NUMBER == (TROUPE_VERSION_MAJOR << 16 | TROUPE_VERSION_MINOR << 8 |
                                        TROUPE_VERSION_PATCH),
              "version numbers");

namespace {

enum : uint32_t { START = 1, ASK, ANSWER };
constexpr uint64_t N = 1000;

struct client_state {
    tr_pid server;
    uint64_t next, answers, wrong;
    uint64_t *answered;  // main's counter, written once at the end
};

int failures = 0;

void check(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "cxx/hello: FAILED: %s\n", what);
        failures++;
    }
}

}  // namespace

extern "C" {

static void server(tr_ctx *cx, void *, const tr_msg *m)
{
    uint64_t x;
    if (m->type != ASK || m->len != sizeof x)
        return;
    std::memcpy(&x, m->data, sizeof x);
    x *= 2;
    tr_send(cx, m->from, ANSWER, &x, sizeof x);
}

static void client(tr_ctx *cx, void *state, const tr_msg *m)
{
    auto *s = static_cast<client_state *>(state);
    if (m->type == START) {
        for (uint64_t i = 1; i <= N; i++) {
            if (i % 2 == 0) {
                tr_send(cx, s->server, ASK, &i, sizeof i);
                continue;
            }
            tr_msg *q = tr_msg_alloc(ASK, sizeof i);
            if (q == nullptr)
                return;
            std::memcpy(q->data, &i, sizeof i);
            tr_msg_send(cx, s->server, q);
        }
    } else if (m->type == ANSWER) {
        uint64_t x;
        std::memcpy(&x, m->data, sizeof x);
        s->next++;  // per-sender FIFO: answers come back in order
        if (m->len != sizeof x || x != 2 * s->next)
            s->wrong++;
        if (++s->answers == N) {
            *s->answered = s->wrong == 0 ? s->answers : 0;
            tr_stop(cx);
        }
    }
}

}  // extern "C"

int main()
{
    tr_config cfg;
    tr_config_init(&cfg);
    cfg.threads = 2;
    tr_runtime *rt = nullptr;
    check(tr_runtime_create(&cfg, &rt) == TR_OK, "tr_runtime_create");
    if (rt == nullptr)
        return 1;

    uint64_t answered = 0;
    tr_pid srv = TR_PID_NONE, cli = TR_PID_NONE;
    check(tr_spawn(tr_runtime_ctx(rt), server, nullptr, 0, &srv) == TR_OK, "spawn the server");
    client_state cs{srv, 0, 0, 0, &answered};
    check(tr_spawn(tr_runtime_ctx(rt), client, &cs, sizeof cs, &cli) == TR_OK, "spawn the client");
    check(tr_send(tr_runtime_ctx(rt), cli, START, nullptr, 0) == TR_OK, "send START");

    // Errors read the same from C++: a reserved type is refused.
    check(tr_send(tr_runtime_ctx(rt), cli, TR_MSG_SYSTEM, nullptr, 0) == TR_EINVAL, "reserved type");
    check(std::string(tr_strerror(TR_EINVAL)).size() > 0, "tr_strerror");

    check(tr_runtime_run(rt) == 0, "tr_runtime_run returns 0 when quiescent");
    check(answered == N, "every answer came back, right and in order");

    tr_stats st;
    tr_runtime_stats(rt, &st);
    check(st.messages_handled == 1 + 2 * N, "messages handled: START, N asks, N answers");
    tr_runtime_destroy(rt);

    if (failures == 0)
        std::printf("cxx/hello: ok (troupe %s, %llu round trips)\n", TROUPE_VERSION,
                    static_cast<unsigned long long>(answered));
    return failures == 0 ? 0 : 1;
}
