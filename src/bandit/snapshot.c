/* snapshot.c — the snapshot codec (layout in snapshot.h). Encoding runs one writer twice: once
 * counting bytes, once filling a buffer of exactly that size, so the layout is written in one
 * place and never reallocated. Decoding is a parser of untrusted bytes: magic, format and
 * checksum first, then every count is bounded by its cap and by the bytes left (each counted
 * item takes at least a known number of bytes) before anything is allocated, so decoding
 * allocates a few times the snapshot's size at most. The model's matrices are stored as their
 * used d×d part only and rebuilt in the cap×cap layout linear.c grows (cap doubles from 8: the
 * smallest such power of two ≥ d, so the unused cells cost < 4× the stored ones beyond 8×8);
 * the unused cells are zero, as in linear.c. The decoded state is built aside and swapped in
 * only when all of it is valid. */
#include "bandit/snapshot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define MAGIC "SCOUTSNP"
#define MAGIC_LEN 8
#define HEADER_LEN (MAGIC_LEN + 4)     /* magic and format: readable whatever the format */
#define CHECKSUM_LEN 8
#define NO_SLOT 0xffffffffu            /* a slot of -1 */
#define FIRST_CAP 8                    /* lin_new's first allocated dimension */
#define ARM_BYTES 48                   /* one struct arm_stats: six 8-byte fields */
#define VALUE_STATS_BYTES 24           /* one struct lin_value_stats */
#define MIN_FEATURE_BYTES 37           /* name length, type, slot, n, mean, m2, nvalues */
#define MIN_VALUE_BYTES 9              /* text length, slot, overflow (then the per-arm stats) */

/* ---- checksum ----------------------------------------------------------------------------- */

uint64_t snapshot_checksum(const unsigned char *buf, size_t len) {
    uint64_t h = 14695981039346656037ULL;   /* FNV-1a: each step is a bijection of h */
    for (size_t i = 0; i < len; i++) {
        h ^= buf[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* With buf NULL the writer only counts. */
struct writer {
    unsigned char *buf;
    size_t pos;
};

static void put_u8(struct writer *w, unsigned v) {
    if (w->buf) w->buf[w->pos] = (unsigned char)v;
    w->pos++;
}

static void put_u32(struct writer *w, uint32_t v) {
    for (int i = 0; i < 4; i++) put_u8(w, (v >> (8 * i)) & 0xffu);
}

static void put_u64(struct writer *w, uint64_t v) {
    for (int i = 0; i < 8; i++) put_u8(w, (unsigned)((v >> (8 * i)) & 0xffu));
}

static void put_f64(struct writer *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(w, bits);
}

static void put_str(struct writer *w, const char *s) {
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    if (w->buf) memcpy(w->buf + w->pos, s, n);
    w->pos += n;
}

static void put_slot(struct writer *w, int slot) {
    put_u32(w, slot < 0 ? NO_SLOT : (uint32_t)slot);
}

/* The used d×d part of each arm's cap×cap block. */
static void put_blocks(struct writer *w, const struct lin_model *m, const double *base) {
    size_t c = (size_t)m->cap;
    for (int arm = 0; arm < m->narms; arm++)
        for (int i = 0; i < m->d; i++)
            for (int j = 0; j < m->d; j++) put_f64(w, base[((size_t)arm * c + (size_t)i) * c + (size_t)j]);
}

static void put_vectors(struct writer *w, const struct lin_model *m, const double *base) {
    for (int arm = 0; arm < m->narms; arm++)
        for (int i = 0; i < m->d; i++) put_f64(w, base[(size_t)arm * (size_t)m->cap + (size_t)i]);
}

static void put_model(struct writer *w, const struct lin_model *m) {
    put_u32(w, (uint32_t)m->narms);
    put_u32(w, (uint32_t)m->d);
    put_u32(w, (uint32_t)m->cap);
    put_f64(w, m->lambda);
    put_f64(w, m->discount);
    put_blocks(w, m, m->ainv);
    if (m->discount < 1.0) put_blocks(w, m, m->a);
    put_vectors(w, m, m->b);
    put_vectors(w, m, m->theta);
    for (int arm = 0; arm < m->narms; arm++) put_u64(w, m->arm_updates[arm]);
    put_u32(w, (uint32_t)m->nfeat);
    for (int i = 0; i < m->nfeat; i++) {
        const struct lin_feature *f = &m->feat[i];
        put_str(w, f->name);
        put_u8(w, (unsigned)f->type);
        put_slot(w, f->slot);
        put_f64(w, f->n);
        put_f64(w, f->mean);
        put_f64(w, f->m2);
        put_u32(w, (uint32_t)f->nvalues);
        for (int v = 0; v < f->nvalues; v++) {
            const struct lin_value *val = &f->values[v];
            put_str(w, val->text);
            put_slot(w, val->slot);
            put_u8(w, val->overflow ? 1 : 0);
            for (int arm = 0; arm < m->narms; arm++) {
                put_u64(w, val->arms[arm].n);
                put_f64(w, val->arms[arm].sum);
                put_f64(w, val->arms[arm].sumsq);
            }
        }
    }
    put_u64(w, m->dropped);
    put_f64(w, m->rn);
    put_f64(w, m->rmean);
    put_f64(w, m->rm2);
}

/* Everything but the checksum. */
static void put_state(struct writer *w, const struct policy *p, double last_update_at) {
    for (int i = 0; i < MAGIC_LEN; i++) put_u8(w, (unsigned char)MAGIC[i]);
    put_u32(w, SNAPSHOT_FORMAT);
    put_f64(w, last_update_at);
    put_u32(w, (uint32_t)p->kind);
    put_u32(w, (uint32_t)p->narms);
    put_f64(w, p->discount);
    for (int i = 0; i < p->narms; i++) {
        const struct arm_stats *a = &p->arms[i];
        put_u64(w, a->n);
        put_f64(w, a->sum);
        put_f64(w, a->sumsq);
        put_f64(w, a->w);
        put_f64(w, a->ws);
        put_f64(w, a->wss);
    }
    put_u64(w, p->updates);
    put_f64(w, p->rmin);
    put_f64(w, p->rmax);
    put_u64(w, p->version);
    put_u8(w, p->lin ? 1 : 0);
    if (p->lin) put_model(w, p->lin);
}

int snapshot_encode(const struct policy *p, double last_update_at, unsigned char **out, size_t *len) {
    struct writer w = {NULL, 0};
    unsigned char *buf;
    size_t n;
    put_state(&w, p, last_update_at);
    n = w.pos;
    if (!(buf = malloc(n + CHECKSUM_LEN))) return SCOUT_ENOMEM;
    w.buf = buf;
    w.pos = 0;
    put_state(&w, p, last_update_at);
    put_u64(&w, snapshot_checksum(buf, n));
    *out = buf;
    *len = w.pos;
    return SCOUT_OK;
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* Reads past the end yield zeros and set `truncated`; callers check it before using a count. */
struct reader {
    const unsigned char *p;
    size_t left;
    int truncated;
};

static int refuse(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return SCOUT_EINVAL;
}

static int take(struct reader *r, size_t n) {
    if (r->truncated || r->left < n) {
        r->truncated = 1;
        r->left = 0;
        return 0;
    }
    return 1;
}

static uint64_t load_le(const unsigned char *p, int nbytes) {
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_le(struct reader *r, int nbytes) {
    uint64_t v;
    if (!take(r, (size_t)nbytes)) return 0;
    v = load_le(r->p, nbytes);
    r->p += nbytes;
    r->left -= (size_t)nbytes;
    return v;
}

static unsigned get_u8(struct reader *r) { return (unsigned)get_le(r, 1); }
static uint32_t get_u32(struct reader *r) { return (uint32_t)get_le(r, 4); }
static uint64_t get_u64(struct reader *r) { return get_le(r, 8); }

static double get_f64(struct reader *r) {
    uint64_t bits = get_le(r, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Whether count items of at least `each` bytes can still follow (false also on overflow). */
static int room_for(const struct reader *r, size_t count, size_t each) {
    return !r->truncated && (each == 0 || count <= r->left / each);
}

/* A u32-length string of at most max bytes without NUL, as a new string in *out. */
static int get_str(struct reader *r, size_t max, const char *what, char **out, char *err, size_t errlen) {
    uint32_t n = get_u32(r);
    char *s;
    if (r->truncated) return refuse(err, errlen, "snapshot is truncated (in a %s)", what);
    if (n > max) return refuse(err, errlen, "snapshot has a %s of %u bytes (at most %zu)", what, n, max);
    if (!room_for(r, n, 1)) return refuse(err, errlen, "snapshot is truncated (in a %s)", what);
    if (memchr(r->p, '\0', n)) return refuse(err, errlen, "snapshot has a %s with a NUL byte", what);
    if (!(s = malloc((size_t)n + 1))) return SCOUT_ENOMEM;
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    *out = s;
    return SCOUT_OK;
}

/* A slot: -1 (when allowed) or an encoded feature slot in [1, d) (0 is the intercept). */
static int get_slot(struct reader *r, int d, int allow_none, int *slot) {
    uint32_t v = get_u32(r);
    if (r->truncated) return 0;
    if (v == NO_SLOT && allow_none) *slot = -1;
    else if (v >= 1 && v < (uint32_t)d) *slot = (int)v;
    else return 0;
    return 1;
}

/* The cap×cap blocks of every arm, from their d×d parts. */
static void get_blocks(struct reader *r, const struct lin_model *m, double *base) {
    size_t c = (size_t)m->cap;
    for (int arm = 0; arm < m->narms; arm++)
        for (int i = 0; i < m->d; i++)
            for (int j = 0; j < m->d; j++) base[((size_t)arm * c + (size_t)i) * c + (size_t)j] = get_f64(r);
}

static void get_vectors(struct reader *r, const struct lin_model *m, double *base) {
    for (int arm = 0; arm < m->narms; arm++)
        for (int i = 0; i < m->d; i++) base[(size_t)arm * (size_t)m->cap + (size_t)i] = get_f64(r);
}

/* Marks slot s as owned; false when something owns it already. */
static int claim_slot(unsigned char *owned, int s) {
    if (owned[s]) return 0;
    owned[s] = 1;
    return 1;
}

/* One feature into f (zeroed, already counted in m->nfeat so lin_free cleans up after it).
 * owned[LIN_MAX_DIM] marks the slots claimed so far: no two features or values share one. */
static int get_feature(struct reader *r, struct lin_model *m, struct lin_feature *f, unsigned char *owned,
                       char *err, size_t errlen) {
    const size_t k = (size_t)m->narms;
    int rc, overflow_slot = -1, ordinary = 0;
    unsigned type;
    uint32_t nvalues;
    if ((rc = get_str(r, SCOUT_MAX_CONTEXT_KEY, "feature name", &f->name, err, errlen)) != SCOUT_OK) return rc;
    type = get_u8(r);
    if (!r->truncated && type > LIN_STRING)
        return refuse(err, errlen, "snapshot has a feature of unknown type %u", type);
    f->type = (enum lin_type)type;
    if (!get_slot(r, m->d, f->type == LIN_STRING, &f->slot) && !r->truncated)
        return refuse(err, errlen, "snapshot has a feature slot outside the model's dimension %d", m->d);
    if (f->type != LIN_STRING && !r->truncated && !claim_slot(owned, f->slot))
        return refuse(err, errlen, "snapshot gives slot %d to two features", f->slot);
    f->n = get_f64(r);
    f->mean = get_f64(r);
    f->m2 = get_f64(r);
    nvalues = get_u32(r);
    if (r->truncated) return refuse(err, errlen, "snapshot is truncated (in a feature)");
    if (nvalues > LIN_MAX_VALUES + 1 || (f->type == LIN_NUMBER && nvalues > 0))
        return refuse(err, errlen, "snapshot has a feature with %u values (at most %d, none for a number)", nvalues,
                      LIN_MAX_VALUES + 1);
    if (!room_for(r, nvalues, MIN_VALUE_BYTES + k * VALUE_STATS_BYTES))
        return refuse(err, errlen, "snapshot is truncated (in a feature's values)");
    if (nvalues && !(f->values = calloc(nvalues, sizeof *f->values))) return SCOUT_ENOMEM;
    f->nvalues = (int)nvalues;
    for (uint32_t i = 0; i < nvalues; i++) {
        struct lin_value *v = &f->values[i];
        unsigned overflow;
        if ((rc = get_str(r, SCOUT_MAX_CONTEXT_STR, "feature value", &v->text, err, errlen)) != SCOUT_OK) return rc;
        /* A string value owns a slot; a boolean's values only keep statistics. */
        if (!get_slot(r, m->d, f->type == LIN_BOOL, &v->slot) && !r->truncated)
            return refuse(err, errlen, "snapshot has a value slot outside the model's dimension %d", m->d);
        overflow = get_u8(r);
        if (r->truncated) return refuse(err, errlen, "snapshot is truncated (in a feature value)");
        if (overflow > 1 || (f->type == LIN_BOOL && (v->slot != -1 || overflow)))
            return refuse(err, errlen, "snapshot has a malformed value of feature %s", f->name);
        if (f->type == LIN_STRING && !claim_slot(owned, v->slot))
            return refuse(err, errlen, "snapshot gives slot %d to two features or values", v->slot);
        v->overflow = (int)overflow;
        if (overflow) {
            if (overflow_slot >= 0)
                return refuse(err, errlen, "snapshot has two overflow values in feature %s", f->name);
            overflow_slot = v->slot;
        } else {
            ordinary++;
        }
        if (!(v->arms = calloc(k, sizeof *v->arms))) return SCOUT_ENOMEM;
        for (size_t arm = 0; arm < k; arm++) {
            v->arms[arm].n = get_u64(r);
            v->arms[arm].sum = get_f64(r);
            v->arms[arm].sumsq = get_f64(r);
        }
    }
    if (f->type == LIN_STRING && (ordinary > LIN_MAX_VALUES || f->slot != overflow_slot))
        return refuse(err, errlen, "snapshot has a malformed string feature %s", f->name);
    return SCOUT_OK;
}

/* The cap linear.c has allocated for dimension d. */
static int cap_for(int d) {
    int cap = FIRST_CAP;
    while (cap < d) cap *= 2;
    return cap;
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The linear model, for a policy of narms arms and discount γ; *out is owned by the caller. */
static int get_model(struct reader *r, int narms, double discount, struct lin_model **out, char *err,
                     size_t errlen) {
    unsigned char owned[LIN_MAX_DIM] = {0};
    struct lin_model *m = NULL;
    uint32_t mnarms, d, cap, nfeat;
    size_t k = (size_t)narms, cells, blocks;
    int rc = SCOUT_EINVAL;
    mnarms = get_u32(r);
    d = get_u32(r);
    cap = get_u32(r);
    if (r->truncated) {
        rc = refuse(err, errlen, "snapshot is truncated (in the linear model)");
        goto fail;
    }
    if (mnarms != (uint32_t)narms) {
        rc = refuse(err, errlen, "snapshot's linear model has %u arms, its policy %d", mnarms, narms);
        goto fail;
    }
    /* As add_slot keeps them: 1 ≤ d ≤ LIN_MAX_DIM and arms × d² ≤ LIN_MAX_CELLS. */
    if (d < 1 || d > LIN_MAX_DIM || k * d * d > LIN_MAX_CELLS || cap != (uint32_t)cap_for((int)d)) {
        rc = refuse(err, errlen, "snapshot's linear model has an impossible dimension (d %u, allocated %u)", d, cap);
        goto fail;
    }
    if (!(m = calloc(1, sizeof *m))) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    m->narms = narms;
    m->d = (int)d;
    m->cap = (int)cap;
    m->lambda = get_f64(r);
    m->discount = get_f64(r);
    if (!r->truncated && !same_bits(m->discount, discount)) {
        rc = refuse(err, errlen, "snapshot's linear model has another discount than its policy");
        goto fail;
    }
    /* The matrices, vectors and counters must all be there before they are allocated. */
    blocks = m->discount < 1.0 ? 2 : 1;
    if (!room_for(r, k, (blocks * d * d + 2 * (size_t)d + 1) * 8)) {
        rc = refuse(err, errlen, "snapshot is truncated (in the linear model's matrices)");
        goto fail;
    }
    cells = k * cap * cap;
    m->ainv = calloc(cells, sizeof *m->ainv);
    m->a = blocks == 2 ? calloc(cells, sizeof *m->a) : NULL;
    m->b = calloc(k * cap, sizeof *m->b);
    m->theta = calloc(k * cap, sizeof *m->theta);
    m->arm_updates = calloc(k, sizeof *m->arm_updates);
    if (!m->ainv || (blocks == 2 && !m->a) || !m->b || !m->theta || !m->arm_updates) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    get_blocks(r, m, m->ainv);
    if (m->a) get_blocks(r, m, m->a);
    get_vectors(r, m, m->b);
    get_vectors(r, m, m->theta);
    for (size_t arm = 0; arm < k; arm++) m->arm_updates[arm] = get_u64(r);
    nfeat = get_u32(r);
    if (r->truncated) {
        rc = refuse(err, errlen, "snapshot is truncated (in the linear model)");
        goto fail;
    }
    if (nfeat > LIN_MAX_DIM) {
        rc = refuse(err, errlen, "snapshot's linear model has %u features (at most %d)", nfeat, LIN_MAX_DIM);
        goto fail;
    }
    if (!room_for(r, nfeat, MIN_FEATURE_BYTES)) {
        rc = refuse(err, errlen, "snapshot is truncated (in the features)");
        goto fail;
    }
    if (nfeat && !(m->feat = calloc(nfeat, sizeof *m->feat))) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    m->nfeat = (int)nfeat;
    for (uint32_t i = 0; i < nfeat; i++)
        if ((rc = get_feature(r, m, &m->feat[i], owned, err, errlen)) != SCOUT_OK) goto fail;
    m->dropped = get_u64(r);
    m->rn = get_f64(r);
    m->rmean = get_f64(r);
    m->rm2 = get_f64(r);
    if (r->truncated) {
        rc = refuse(err, errlen, "snapshot is truncated (in the linear model)");
        goto fail;
    }
    *out = m;
    return SCOUT_OK;
fail:
    lin_free(m);
    return rc;
}

static const char *kind_name(uint32_t kind) {
    return kind <= POLICY_LINTS ? policy_kind_name((enum policy_kind)kind) : "unknown";
}

int snapshot_decode(const unsigned char *buf, size_t len, struct policy *p, double *last_update_at, char *err,
                    size_t errlen) {
    struct reader r = {buf, 0, 0};
    struct arm_stats *arms = NULL;
    struct lin_model *lin = NULL;
    uint64_t updates, version;
    uint32_t format, kind, narms;
    double when, discount, rmin, rmax;
    unsigned has_model;
    int rc = SCOUT_EINVAL;
    if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        return refuse(err, errlen, "not a Scout snapshot (no \"%s\" magic)", MAGIC);
    r.p = buf + MAGIC_LEN;
    r.left = len - MAGIC_LEN;
    format = get_u32(&r);
    if (r.truncated) return refuse(err, errlen, "snapshot is truncated (no format version)");
    if (format > SNAPSHOT_FORMAT)
        return refuse(err, errlen, "snapshot format %u is newer than this server's (%d)", format, SNAPSHOT_FORMAT);
    if (format != SNAPSHOT_FORMAT)
        return refuse(err, errlen, "snapshot format %u is not supported (this server reads %d)", format,
                      SNAPSHOT_FORMAT);
    if (len < HEADER_LEN + CHECKSUM_LEN) return refuse(err, errlen, "snapshot is truncated (no checksum)");
    r.left = len - HEADER_LEN - CHECKSUM_LEN;   /* the checksum is not a field */
    if (load_le(buf + len - CHECKSUM_LEN, CHECKSUM_LEN) != snapshot_checksum(buf, len - CHECKSUM_LEN))
        return refuse(err, errlen, "snapshot checksum mismatch: corrupt or truncated");

    when = get_f64(&r);
    kind = get_u32(&r);
    narms = get_u32(&r);
    discount = get_f64(&r);
    if (r.truncated) return refuse(err, errlen, "snapshot is truncated (in the header)");
    if (kind != (uint32_t)p->kind)
        return refuse(err, errlen, "snapshot was taken for policy %s, the test's is %s", kind_name(kind),
                      policy_kind_name(p->kind));
    if (narms < 1 || narms > SCOUT_MAX_VARIANTS || narms != (uint32_t)p->narms)
        return refuse(err, errlen, "snapshot was taken for %u variants, the test has %d", narms, p->narms);
    if (!same_bits(discount, p->discount))
        return refuse(err, errlen, "snapshot was taken with discount %.17g, the test's is %.17g", discount,
                      p->discount);
    if (!room_for(&r, narms, ARM_BYTES)) return refuse(err, errlen, "snapshot is truncated (in the arms)");
    if (!(arms = malloc(sizeof *arms * narms))) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < narms; i++) {
        arms[i].n = get_u64(&r);
        arms[i].sum = get_f64(&r);
        arms[i].sumsq = get_f64(&r);
        arms[i].w = get_f64(&r);
        arms[i].ws = get_f64(&r);
        arms[i].wss = get_f64(&r);
    }
    updates = get_u64(&r);
    rmin = get_f64(&r);
    rmax = get_f64(&r);
    version = get_u64(&r);
    has_model = get_u8(&r);
    if (r.truncated) {
        rc = refuse(err, errlen, "snapshot is truncated (in the learned state)");
        goto fail;
    }
    if (has_model > 1) {
        rc = refuse(err, errlen, "snapshot has a malformed model flag (%u)", has_model);
        goto fail;
    }
    if (has_model != (p->lin ? 1u : 0u)) {
        rc = refuse(err, errlen, has_model ? "snapshot has a linear model, the test's policy has none"
                                           : "snapshot lacks the linear model the test's policy needs");
        goto fail;
    }
    if (has_model && (rc = get_model(&r, p->narms, p->discount, &lin, err, errlen)) != SCOUT_OK) goto fail;
    if (r.left != 0) {
        rc = refuse(err, errlen, "snapshot has %zu bytes after its last field", r.left);
        goto fail;
    }

    free(p->arms);
    lin_free(p->lin);
    p->arms = arms;
    p->lin = lin;
    p->updates = updates;
    p->rmin = rmin;
    p->rmax = rmax;
    p->version = version;
    *last_update_at = when;
    return SCOUT_OK;
fail:
    if (rc == SCOUT_ENOMEM) refuse(err, errlen, "out of memory while decoding a snapshot");
    free(arms);
    lin_free(lin);
    return rc;
}
