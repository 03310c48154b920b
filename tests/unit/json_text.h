/* json_text.h — JSON written inside a test, parsed or the test fails (a typo in a test must not
 * pass as a refused input). Header-only; include after <cmocka.h>. */
#ifndef SCOUT_TEST_JSON_TEXT_H
#define SCOUT_TEST_JSON_TEXT_H

#include <jansson.h>

/* Parses JSON text written in the test (fails the test on a typo). */
static inline json_t *J(const char *text) {
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v) {
        print_error("bad JSON in test: %s: %s\n", text, jerr.text);
        fail();
    }
    return v;
}

#endif
