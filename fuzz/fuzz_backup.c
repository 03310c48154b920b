/* fuzz_backup.c — libFuzzer target for the backup reader, which `scoutd restore` runs on a file
 * that may be damaged or hostile. Input: one flag byte, then the file. Flag bit 0 clear: the
 * bytes are the JSON lines themselves (what gzip would hold), so mutations reach the record
 * parser; set: the bytes are the gzip file, so they reach the decompressor. Whatever the input:
 * no crash, leak or overread, bounded memory; a refusal says why in one sentence; and a file
 * accepted is one whose trailer matched (its SHA-256 is reported). */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "backup.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    struct backup_summary sum;
    char err[512] = "";
    unsigned char *body;
    size_t len;
    int rc;
    if (size < 1) return 0;
    if (sodium_init() < 0) abort();
    len = size - 1;
    if (!(body = malloc(len ? len : 1))) return 0;   /* exactly len bytes: ASan sees any overread */
    memcpy(body, data + 1, len);
    rc = backup_verify_mem(body, len, data[0] & 1, &sum, err, sizeof err);
    if (rc == SCOUT_OK) {
        if (strlen(sum.sha256) != 64 || sum.version < 1 || sum.version > BACKUP_VERSION || sum.records < 1) abort();
    } else if (rc == SCOUT_EINVAL || rc == SCOUT_ENOMEM) {
        if (!err[0] || strchr(err, '\n')) abort();   /* one sentence, one line */
    } else {
        abort();
    }
    free(body);
    return 0;
}
