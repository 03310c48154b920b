/* fuzz_definition.c — libFuzzer target for create_model bodies: arbitrary bytes through the
 * JSON parser and experiment_from_definition, then variant lookups and a decision on what was
 * accepted. Must never crash, leak or accept a definition it cannot load back. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "experiment.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    json_t *def = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    struct experiment *e = NULL, *again = NULL;
    char err[256];
    int status;
    static int init;
    if (!init) {
        init = sodium_init() >= 0;
    }
    if (!def) return 0;
    if (experiment_from_definition(def, "00000000-0000-4000-8000-000000000000", 1.0, &e, &status, err, sizeof err) ==
        SCOUT_OK) {
        /* What was accepted must load again from its normalised form. */
        if (experiment_from_definition(e->definition, e->id, 1.0, &again, &status, err, sizeof err) != SCOUT_OK) abort();
        json_t *refs = json_object_get(def, "variants");
        const char *key;
        json_t *label;
        json_object_foreach(refs, key, label) {
            json_t *k = json_string(key);
            if (experiment_find_variant(e, k) < 0 || experiment_find_variant(e, label) < 0) abort();
            json_decref(k);
        }
        struct decision d = experiment_decide(e, NULL, 0, NULL);
        if (d.arm < 0 || d.arm >= e->nvariants) abort();
        experiment_apply_reward(e, d.arm, 1.0, NULL, 1.0);
        experiment_unref(again);
        experiment_unref(e);
    } else if (status != 400 && status != 422) {
        abort();
    }
    json_decref(def);
    return 0;
}
