/* fuzz_context.c — libFuzzer target for contexts: arbitrary JSON through context_normalize and
 * the inline "feature_" form. Whatever is accepted must respect every cap of common.h. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "bandit/context.h"
#include "util/common.h"

static void check_caps(const json_t *ctx) {
    const char *key;
    json_t *v;
    if (!ctx) return;
    if (!json_is_object(ctx) || json_object_size(ctx) > SCOUT_MAX_CONTEXT_KEYS) abort();
    json_object_foreach((json_t *)ctx, key, v) {
        if (!*key || strlen(key) > SCOUT_MAX_CONTEXT_KEY) abort();
        if (json_is_string(v) && json_string_length(v) > SCOUT_MAX_CONTEXT_STR) abort();
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) abort();
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL), *out = NULL, *merged = NULL;
    char err[256];
    if (!in) return 0;
    if (context_normalize(in, &out, err, sizeof err) == SCOUT_OK) check_caps(out);
    if (context_merge(&merged, in, "feature_", err, sizeof err) == SCOUT_OK) check_caps(merged);
    json_decref(out);
    json_decref(merged);
    json_decref(in);
    return 0;
}
