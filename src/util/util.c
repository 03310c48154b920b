/* util.c — wall-clock time, ISO-8601 formatting, UUIDv4, fast random bytes and strict integer
 * parsing. Randomness comes from the OS CSPRNG through libsodium, directly (test ids) or
 * through a per-thread ChaCha20 keystream keyed from it (request ids): ids are unguessable. */
#include "util/util.h"

#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

double util_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double util_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void util_sleep(double seconds) {
    struct timespec ts;
    if (seconds <= 0) return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

void util_iso8601(double t, char *buf, size_t len) {
    /* Round to whole milliseconds first: X.123 is stored just below .123 and truncating
     * would print .122. */
    long long tms = llround(t * 1000.0);
    time_t secs = (time_t)(tms / 1000);
    int ms = (int)(tms % 1000);
    struct tm tm;
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

json_t *util_json_time(double t) {
    char buf[40];
    if (t <= 0) return json_null();
    util_iso8601(t, buf, sizeof buf);
    return json_string(buf);
}

/* Per thread: a ChaCha20 keystream under a key from the OS, refilled with fast key erasure
 * (each refill's first 32 bytes become the next key and are wiped from the buffer), so a
 * decision's request id costs no system call and a later memory read reveals no earlier
 * output. */
#define RNG_BLOCK 512
static _Thread_local struct {
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
    unsigned char buf[RNG_BLOCK];
    size_t pos;
    int seeded;
} rng;

void util_random(void *out, size_t n) {
    unsigned char *o = out;
    static const unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
    while (n > 0) {
        size_t take;
        if (!rng.seeded || rng.pos == RNG_BLOCK) {
            if (!rng.seeded) {
                randombytes_buf(rng.key, sizeof rng.key);
                rng.seeded = 1;
            }
            crypto_stream_chacha20(rng.buf, RNG_BLOCK, nonce, rng.key);
            memcpy(rng.key, rng.buf, sizeof rng.key);
            sodium_memzero(rng.buf, sizeof rng.key);
            rng.pos = sizeof rng.key;
        }
        take = RNG_BLOCK - rng.pos < n ? RNG_BLOCK - rng.pos : n;
        memcpy(o, rng.buf + rng.pos, take);
        sodium_memzero(rng.buf + rng.pos, take);
        rng.pos += take;
        o += take;
        n -= take;
    }
}

static void format_uuid4(unsigned char b[16], char out[SCOUT_ID_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

void util_uuid4(char out[SCOUT_ID_LEN + 1]) {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    format_uuid4(b, out);
}

void util_uuid4_timed(double t, char out[SCOUT_ID_LEN + 1]) {
    unsigned char b[16];
    uint64_t ms = t > 0 ? (uint64_t)(t * 1000.0) : 0;
    for (int i = 0; i < 6; i++) b[i] = (unsigned char)(ms >> (40 - 8 * i));
    util_random(b + 6, sizeof b - 6);
    format_uuid4(b, out);
}

int util_parse_index(const char *s, long max, long *out) {
    if (!s || !*s || strlen(s) > 10) return 0;
    if (s[0] == '0' && s[1] != '\0') return 0;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
    }
    if (v > max) return 0;
    *out = v;
    return 1;
}

int util_utf8_prefix(const char *s, int max) {
    int n = (int)strnlen(s, (size_t)max + 1);
    if (n <= max) return n;
    n = max;
    /* Back up over continuation bytes (10xxxxxx) to the start of the cut character. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}
