/* context.c — validates and normalises request contexts against the caps in common.h.
 * Checked before anything is stored, so a hostile context costs bounded memory: at most
 * SCOUT_MAX_CONTEXT_KEYS keys of bounded length and bounded string values. */
#include "bandit/context.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/common.h"
#include "util/util.h"

int context_merge(json_t **dst, const json_t *src, const char *prefix, char *err, size_t errlen) {
    const char *key;
    json_t *val;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (!src || json_is_null(src)) return SCOUT_OK;
    if (!json_is_object(src)) {
        snprintf(err, errlen, "context must be a JSON object");
        return SCOUT_EINVAL;
    }
    json_object_foreach((json_t *)src, key, val) {
        const char *name = key;
        if (prefix) {
            if (strncmp(key, prefix, plen) != 0) continue;
            name = key + plen;
        }
        if (json_is_null(val)) continue;
        if (!*name || strlen(name) > SCOUT_MAX_CONTEXT_KEY) {
            snprintf(err, errlen, "context keys must be 1 to %d characters long", SCOUT_MAX_CONTEXT_KEY);
            return SCOUT_EINVAL;
        }
        if (json_is_string(val)) {
            if (json_string_length(val) > SCOUT_MAX_CONTEXT_STR) {
                snprintf(err, errlen, "context value of '%.*s' is longer than %d characters",
                         util_utf8_prefix(name, 64), name, SCOUT_MAX_CONTEXT_STR);
                return SCOUT_EINVAL;
            }
        } else if (json_is_number(val)) {
            if (!isfinite(json_number_value(val))) {
                snprintf(err, errlen, "context value of '%.*s' must be a finite number", util_utf8_prefix(name, 64), name);
                return SCOUT_EINVAL;
            }
        } else if (!json_is_boolean(val)) {
            snprintf(err, errlen, "context value of '%.*s' must be a string, a number or a boolean",
                     util_utf8_prefix(name, 64), name);
            return SCOUT_EINVAL;
        }
        if (!*dst && !(*dst = json_object())) return SCOUT_ENOMEM;
        if (!json_object_get(*dst, name) && json_object_size(*dst) >= SCOUT_MAX_CONTEXT_KEYS) {
            snprintf(err, errlen, "context has more than %d keys", SCOUT_MAX_CONTEXT_KEYS);
            return SCOUT_EINVAL;
        }
        json_object_set(*dst, name, val);
    }
    return SCOUT_OK;
}

int context_normalize(const json_t *src, json_t **out, char *err, size_t errlen) {
    json_t *ctx = NULL;
    int rc = context_merge(&ctx, src, NULL, err, errlen);
    if (rc != SCOUT_OK) {
        json_decref(ctx);
        return rc;
    }
    if (ctx && json_object_size(ctx) == 0) {
        json_decref(ctx);
        ctx = NULL;
    }
    *out = ctx;
    return SCOUT_OK;
}
