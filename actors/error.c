/* actors/error.c — the texts of the public API's codes: tr_strerror, made
 * from the one table in troupe/error.h, and tr_exit_reason_name.
 *
 * Why here: the texts belong to no layer (this file includes only public
 * headers and needs nothing of the runtime), so it adds no edge to the
 * include graph wherever it sits; actors/ is where the API's nouns live. */
#include <string.h>

#include "troupe/error.h"
#include "troupe/fault.h"

const char *tr_strerror(int err)
{
    switch (err) {
    case TR_OK:
        return "success";
        /* A value listed twice in TR_ERRORS is a duplicate case: it does
         * not compile. */
#define TR__ERROR_CASE(name, errnum, text) \
    case name:                             \
        return text;
        TR_ERRORS(TR__ERROR_CASE)
#undef TR__ERROR_CASE
    default: {
        /* The socket calls pass other errors through as -errno; glibc's
         * description is static, not localised, and NULL when unknown. */
        const char *desc = err < 0 && err > -4096 ? strerrordesc_np(-err) : NULL;
        return desc != NULL ? desc : "unknown error";
    }
    }
}

const char *tr_exit_reason_name(int reason)
{
    switch (reason) {
#define TR__EXIT_CASE(name, text) \
    case name:                    \
        return text;
        TR_EXIT_REASONS(TR__EXIT_CASE)
#undef TR__EXIT_CASE
    default:
        return "user";
    }
}
