/* fuzz_record.c — libFuzzer target for the Redis store's decision record (store/redis_record.c):
 * any bytes through redis_record_parse. Whatever is accepted must keep its context inside the
 * input, and write back to a value that reads again, after which writing is stable: the same
 * record gives the same bytes; a value written is known by its creation time as written.
 * redis_record_created_at also takes the bytes as they came, with times cut from them. */
#include <stdlib.h>
#include <string.h>

#include "store/redis_record.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *text = malloc(size + 1), *v1 = NULL, *v2 = NULL;
    struct redis_record r1, r2, r3;
    size_t n1, n2;
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';   /* as hiredis hands a value over */
    {   /* any text against a time cut from its end: reads nothing past size */
        size_t cut = size > REDIS_RECORD_TIME_MAX - 1 ? REDIS_RECORD_TIME_MAX - 1 : size;
        char t[REDIS_RECORD_TIME_MAX];
        memcpy(t, text + size - cut, cut);
        t[cut] = '\0';
        (void)redis_record_created_at(text, size, t);
    }
    if (redis_record_parse(text, size, &r1) == 0) {
        if (r1.context && (r1.context < text || r1.context >= text + size)) abort();
        if (!(v1 = redis_record_value(&r1, &n1))) goto out;
        if (redis_record_parse(v1, n1, &r2) != 0) abort();
        {
            char t[REDIS_RECORD_TIME_MAX];
            redis_record_time(t, r1.created);
            if (!redis_record_created_at(v1, n1, t)) abort();
        }
        if (!(v2 = redis_record_value(&r2, &n2))) goto out;
        if (redis_record_parse(v2, n2, &r3) != 0) abort();
        if (n1 != n2 || memcmp(v1, v2, n1)) {
            /* the first write may round a time to the microsecond; from then on it is fixed */
            free(v1);
            v1 = v2;
            n1 = n2;
            if (!(v2 = redis_record_value(&r3, &n2))) goto out;
            if (n1 != n2 || memcmp(v1, v2, n1)) abort();
        }
    }
out:
    free(v1);
    free(v2);
    free(text);
    return 0;
}
