/* netmask.c — address ranges: parse once at start-up, match per request without allocating. */
#include "util/netmask.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Copies len bytes of text into buf as a C string; 0 when it does not fit. */
static int copy_text(char *buf, size_t size, const char *text, size_t len) {
    if (len == 0 || len >= size) return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return 1;
}

/* An address text to (family, 4 or 16 bytes); IPv4-mapped IPv6 becomes IPv4. */
static int parse_addr(const char *text, int *family, unsigned char out[16]) {
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, text, out) != 1) return 0;
    if (!memcmp(out, V4_MAPPED, sizeof V4_MAPPED)) {
        memmove(out, out + 12, 4);
        *family = AF_INET;
    } else {
        *family = AF_INET6;
    }
    return 1;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b, int bits) {
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole)) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int netmask_parse(const char *text, size_t len, struct netmask *out) {
    char buf[64];
    const char *slash;
    int max;
    if (!copy_text(buf, sizeof buf, text, len)) return 0;
    memset(out, 0, sizeof *out);
    slash = strchr(buf, '/');
    if (slash) buf[slash - buf] = '\0';
    if (!parse_addr(buf, &out->family, out->addr)) return 0;
    max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        char *end;
        long bits;
        if (!slash[1] || slash[1] < '0' || slash[1] > '9') return 0;
        bits = strtol(slash + 1, &end, 10);
        if (*end || bits < 0 || bits > max) return 0;
        out->bits = (int)bits;
    }
    /* clear the host bits, so "10.1.2.3/8" means 10.0.0.0/8 */
    for (int i = 0; i < max / 8; i++) {
        int keep = out->bits - i * 8;
        if (keep <= 0) out->addr[i] = 0;
        else if (keep < 8) out->addr[i] &= (unsigned char)(0xff << (8 - keep));
    }
    return 1;
}

int netmask_contains(const struct netmask *list, int n, const char *addr, size_t len) {
    char buf[64];
    unsigned char bin[16];
    int family;
    if (!copy_text(buf, sizeof buf, addr, len) || !parse_addr(buf, &family, bin)) return 0;
    for (int i = 0; i < n; i++)
        if (list[i].family == family && prefix_equal(list[i].addr, bin, list[i].bits)) return 1;
    return 0;
}
