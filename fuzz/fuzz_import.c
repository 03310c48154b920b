/* fuzz_import.c — libFuzzer target for the reader of test exports, which POST
 * /admin/tests/import runs on a request body an admin sends (possibly a damaged or hostile
 * file). Input: the body. Whatever it is: no crash, leak or overread, memory bounded by a small
 * multiple of the input; a refusal is 400 or 422 with one sentence on one line; a document
 * accepted starts with its test record, holds exactly one snapshot with its bytes, and every
 * other record names that test. Seeds: fuzz/corpus/import. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "backup.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    struct test_export x;
    char err[600] = "";
    char *body;
    size_t snapshots = 0;
    int status = 0, rc;
    if (sodium_init() < 0) abort();
    if (!(body = malloc(size ? size : 1))) return 0;   /* exactly size bytes: ASan sees any overread */
    memcpy(body, data, size);
    rc = test_export_parse(body, size, &x, &status, err, sizeof err);
    if (rc == SCOUT_OK) {
        if (x.n < 2 || x.recs[0].kind != STORE_REC_TEST || !x.recs[0].test_id || x.version < 1 ||
            x.version > TEST_EXPORT_VERSION || x.events > TEST_EXPORT_MAX_EVENTS)
            abort();
        for (size_t i = 1; i < x.n; i++) {
            if (strcmp(x.recs[i].test_id, x.recs[0].test_id)) abort();
            if (x.recs[i].kind == STORE_REC_SNAPSHOT) {
                snapshots++;
                if (x.recs[i].u.snapshot.state != x.state || x.recs[i].u.snapshot.len != x.state_len) abort();
            }
        }
        if (snapshots != 1) abort();
    } else if (rc == SCOUT_EINVAL) {
        if ((status != 400 && status != 422) || !err[0] || strchr(err, '\n')) abort();
    } else if (rc != SCOUT_ENOMEM) {
        abort();
    }
    test_export_free(&x);
    free(body);
    return 0;
}
