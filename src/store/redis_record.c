/* redis_record.c — the Redis store's decision record: its one line of numbers, written and read
 * back (the format is in redis_record.h). */
#include "store/redis_record.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *put_u64(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

size_t redis_record_time(char buf[REDIS_RECORD_TIME_MAX], double t) {
    /* Below 2^32 s (the year 2106) doubles are at most 0.48 µs apart: a time written to the
     * microsecond reads back to the double nearest it, which writes the same text again. Past
     * that they are up to 1.9 µs apart (at 9e9), and the text drifted a microsecond per write
     * (found by fuzz_record). The fraction is taken apart from the seconds, exactly. */
    if (!(t >= 1.0 && t < 4294967296.0)) return (size_t)snprintf(buf, REDIS_RECORD_TIME_MAX, "%.17g", t);
    double whole = floor(t);
    uint64_t sec = (uint64_t)whole, frac = (uint64_t)((t - whole) * 1e6 + 0.5);
    if (frac == 1000000) {   /* rounds up into the next second, which may be 2^32 */
        if (++sec == 4294967296ULL) return (size_t)snprintf(buf, REDIS_RECORD_TIME_MAX, "%.17g", t);
        frac = 0;
    }
    char *p = put_u64(buf, sec);
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    p += 6;
    *p = '\0';
    return (size_t)(p - buf);
}

static char *put_i64(char *p, long long v) {
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, 0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* A number in full precision (%.17g: it reads back to the same double); 0 and small integers,
 * the common sums and defaults, without printf. */
static char *put_num(char *p, double v) {
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v && !(v == 0 && signbit(v))) return put_i64(p, (long long)v);
    return p + snprintf(p, 32, "%.17g", v);
}

size_t redis_record_head(char buf[REDIS_RECORD_HEAD_MAX], const struct redis_record *r) {
    /* Each field takes at most 24 characters: the line fits REDIS_RECORD_HEAD_MAX. */
    char *p = buf;
    p = put_i64(p, r->variant);
    *p++ = ' ';
    p = put_num(p, r->propensity);
    *p++ = ' ';
    *p++ = r->explored ? '1' : '0';
    *p++ = ' ';
    p += redis_record_time(p, r->created);
    *p++ = ' ';
    p += redis_record_time(p, r->expires);
    *p++ = ' ';
    if (r->settle_at > 0) p += redis_record_time(p, r->settle_at);
    else *p++ = '0';
    *p++ = ' ';
    p = put_i64(p, r->aggregate);
    *p++ = ' ';
    if (r->has_default) p = put_num(p, r->default_reward);
    else *p++ = '-';
    *p++ = ' ';
    p = put_u64(p, r->model_version);
    *p++ = ' ';
    p = put_i64(p, r->rewards);
    *p++ = ' ';
    p = put_num(p, r->sum);
    *p++ = ' ';
    *p++ = r->settled ? '1' : '0';
    *p++ = '\n';
    *p = '\0';
    return (size_t)(p - buf);
}

char *redis_record_value(const struct redis_record *r, size_t *len) {
    char head[REDIS_RECORD_HEAD_MAX];
    size_t h = redis_record_head(head, r), c = r->context ? strlen(r->context) : 0;
    char *out = malloc(h + c + 1);
    if (!out) return NULL;
    memcpy(out, head, h);
    if (c) memcpy(out + h, r->context, c);
    out[h + c] = '\0';
    *len = h + c;
    return out;
}

/* The field at *p, which must start with a number's first character and end at `sep`: a number
 * never reaches past the line (strto* would skip a newline as white space). */
static int field_end(const char **p, const char *end, char sep) {
    if (end == *p || *end != sep) return -1;
    *p = end + 1;
    return 0;
}

static int starts_number(const char *p, const char *nl) {
    return p < nl && !isspace((unsigned char)*p);
}

static int get_long(const char **p, const char *nl, char sep, long *out) {
    char *end;
    if (!starts_number(*p, nl)) return -1;
    errno = 0;
    *out = strtol(*p, &end, 10);
    return errno ? -1 : field_end(p, end, sep);
}

static int get_double(const char **p, const char *nl, char sep, double *out) {
    char *end;
    if (!starts_number(*p, nl)) return -1;
    *out = strtod(*p, &end);
    return field_end(p, end, sep);
}

static int get_flag(const char **p, const char *nl, int *out) {
    long v;
    if (get_long(p, nl, ' ', &v) < 0 || (v != 0 && v != 1)) return -1;
    *out = (int)v;
    return 0;
}

int redis_record_parse(const char *text, size_t len, struct redis_record *r) {
    const char *nl = memchr(text, '\n', len), *p = text;
    long a;
    memset(r, 0, sizeof *r);
    if (!nl) return -1;
    if (get_long(&p, nl, ' ', &r->variant) < 0 || get_double(&p, nl, ' ', &r->propensity) < 0 ||
        get_flag(&p, nl, &r->explored) < 0 || get_double(&p, nl, ' ', &r->created) < 0 ||
        get_double(&p, nl, ' ', &r->expires) < 0 || get_double(&p, nl, ' ', &r->settle_at) < 0 ||
        get_long(&p, nl, ' ', &a) < 0 || a < 0 || a > 16)
        return -1;
    r->aggregate = (int)a;
    if (p + 1 < nl && p[0] == '-' && p[1] == ' ') {
        p += 2;
    } else {
        if (get_double(&p, nl, ' ', &r->default_reward) < 0) return -1;
        r->has_default = 1;
    }
    {
        char *end;
        if (!starts_number(p, nl) || *p == '-') return -1;
        errno = 0;
        r->model_version = strtoull(p, &end, 10);
        if (errno || field_end(&p, end, ' ') < 0) return -1;
    }
    if (get_long(&p, nl, ' ', &r->rewards) < 0 || get_double(&p, nl, ' ', &r->sum) < 0) return -1;
    {
        long st;
        if (get_long(&p, nl, '\n', &st) < 0 || (st != 0 && st != 1)) return -1;
        r->settled = (int)st;
    }
    if (p != nl + 1) return -1;
    r->context = p < text + len ? p : NULL;
    return 0;
}

int redis_record_created_at(const char *text, size_t len, const char *t) {
    const char *nl = memchr(text, '\n', len), *p = text, *end;
    size_t tlen = strlen(t);
    if (!nl) return 0;
    for (int field = 0; field < 3; field++) {   /* variant, propensity, explored */
        if (!(p = memchr(p, ' ', (size_t)(nl - p)))) return 0;
        p++;
    }
    end = memchr(p, ' ', (size_t)(nl - p));
    return end && (size_t)(end - p) == tlen && !memcmp(p, t, tlen);
}
