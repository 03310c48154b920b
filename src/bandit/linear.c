/* linear.c — context encoding and per-arm ridge regressions for LinUCB and linear Thompson
 * sampling (see linear.h for the model). Matrices are dense, row-major, in blocks of cap×cap
 * per arm; the dimension grows by doubling cap as the encoder meets new features, and a new
 * slot starts exactly as the prior says (A⁻¹ gains 1/λ on the diagonal, b and θ a zero). */
#include "bandit/linear.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bandit/sample.h"
#include "util/common.h"

#define LAMBDA 1.0          /* ridge prior on standardised features */
#define ZCLIP 5.0           /* standardised numbers are clipped to ±5 deviations */
#define GL_NODES 8          /* Gauss–Legendre nodes per piece of the probability integral */
#define Q_MAX_ARMS 16       /* above this many arms, Monte Carlo is cheaper than quadrature */
#define Z_RANGE 8.5         /* the integral over z ~ N(0,1) is taken on [−8.5, 8.5] */
#define MC_DRAWS 1000

#define BLOCK(m, base, arm) ((base) + (size_t)(arm) * (size_t)(m)->cap * (size_t)(m)->cap)
#define VEC(m, base, arm) ((base) + (size_t)(arm) * (size_t)(m)->cap)

static int alloc_blocks(struct lin_model *m, int cap) {
    size_t k = (size_t)m->narms, c = (size_t)cap;
    double *ainv = calloc(k * c * c, sizeof *ainv);
    double *a = m->discount < 1.0 ? calloc(k * c * c, sizeof *a) : NULL;
    double *b = calloc(k * c, sizeof *b), *theta = calloc(k * c, sizeof *theta);
    if (!ainv || !b || !theta || (m->discount < 1.0 && !a)) {
        free(ainv);
        free(a);
        free(b);
        free(theta);
        return SCOUT_ENOMEM;
    }
    for (int arm = 0; arm < m->narms && m->ainv; arm++) {   /* carry the old blocks over */
        for (int i = 0; i < m->d; i++) {
            memcpy(ainv + ((size_t)arm * c + (size_t)i) * c, BLOCK(m, m->ainv, arm) + (size_t)i * m->cap,
                   sizeof *ainv * (size_t)m->d);
            if (a) memcpy(a + ((size_t)arm * c + (size_t)i) * c, BLOCK(m, m->a, arm) + (size_t)i * m->cap,
                          sizeof *a * (size_t)m->d);
        }
        memcpy(b + (size_t)arm * c, VEC(m, m->b, arm), sizeof *b * (size_t)m->d);
        memcpy(theta + (size_t)arm * c, VEC(m, m->theta, arm), sizeof *theta * (size_t)m->d);
    }
    free(m->ainv);
    free(m->a);
    free(m->b);
    free(m->theta);
    m->ainv = ainv;
    m->a = a;
    m->b = b;
    m->theta = theta;
    m->cap = cap;
    return SCOUT_OK;
}

/* A new slot, initialised to the prior; -1 when the dimension is full. */
static int add_slot(struct lin_model *m) {
    int s = m->d;
    if (s >= LIN_MAX_DIM || (size_t)m->narms * (size_t)(s + 1) * (size_t)(s + 1) > LIN_MAX_CELLS) return -1;
    if (s >= m->cap) {
        int cap = m->cap * 2 > LIN_MAX_DIM ? LIN_MAX_DIM : m->cap * 2;
        if (alloc_blocks(m, cap) != SCOUT_OK) return -1;
    }
    for (int arm = 0; arm < m->narms; arm++) {
        BLOCK(m, m->ainv, arm)[(size_t)s * m->cap + s] = 1.0 / m->lambda;
        if (m->a) BLOCK(m, m->a, arm)[(size_t)s * m->cap + s] = m->lambda;
    }
    m->d++;
    return s;
}

struct lin_model *lin_new(int narms, double discount) {
    struct lin_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->narms = narms;
    m->lambda = LAMBDA;
    m->discount = discount > 0 && discount < 1.0 ? discount : 1.0;
    m->arm_updates = calloc((size_t)narms, sizeof *m->arm_updates);
    if (!m->arm_updates || alloc_blocks(m, 8) != SCOUT_OK || add_slot(m) != 0) {   /* slot 0: intercept */
        lin_free(m);
        return NULL;
    }
    return m;
}

static void free_feature(struct lin_feature *f) {
    for (int v = 0; v < f->nvalues; v++) {
        free(f->values[v].text);
        free(f->values[v].arms);
    }
    free(f->values);
    free(f->name);
}

void lin_free(struct lin_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nfeat; i++) free_feature(&m->feat[i]);
    free(m->feat);
    free(m->ainv);
    free(m->a);
    free(m->b);
    free(m->theta);
    free(m->arm_updates);
    free(m);
}

static void *dup_mem(const void *src, size_t n) {
    void *p = n ? malloc(n) : NULL;
    if (p) memcpy(p, src, n);
    return p;
}

struct lin_model *lin_clone(const struct lin_model *m) {
    size_t k = (size_t)m->narms, c = (size_t)m->cap;
    struct lin_model *n = calloc(1, sizeof *n);
    int ok;
    if (!n) return NULL;
    *n = *m;
    n->feat = NULL;
    n->nfeat = 0;
    n->ainv = dup_mem(m->ainv, sizeof(double) * k * c * c);
    n->a = m->a ? dup_mem(m->a, sizeof(double) * k * c * c) : NULL;
    n->b = dup_mem(m->b, sizeof(double) * k * c);
    n->theta = dup_mem(m->theta, sizeof(double) * k * c);
    n->arm_updates = dup_mem(m->arm_updates, sizeof(uint64_t) * k);
    n->feat = m->nfeat ? calloc((size_t)m->nfeat, sizeof *n->feat) : NULL;
    ok = n->ainv && n->b && n->theta && n->arm_updates && (!m->a || n->a) && (!m->nfeat || n->feat);
    for (int i = 0; ok && i < m->nfeat; i++) {
        const struct lin_feature *f = &m->feat[i];
        struct lin_feature *g = &n->feat[i];
        *g = *f;
        g->values = NULL;
        g->nvalues = 0;
        n->nfeat = i + 1;
        if (!(g->name = strdup(f->name))) ok = 0;
        if (ok && f->nvalues && !(g->values = calloc((size_t)f->nvalues, sizeof *g->values))) ok = 0;
        for (int v = 0; ok && v < f->nvalues; v++) {
            g->values[v].slot = f->values[v].slot;
            g->values[v].overflow = f->values[v].overflow;
            g->values[v].text = strdup(f->values[v].text);
            g->values[v].arms = dup_mem(f->values[v].arms, sizeof *f->values[v].arms * k);
            g->nvalues = v + 1;
            if (!g->values[v].text || !g->values[v].arms) ok = 0;
        }
    }
    if (!ok) {
        lin_free(n);
        return NULL;
    }
    return n;
}

static struct lin_feature *find_feature(const struct lin_model *m, const char *name) {
    for (int i = 0; i < m->nfeat; i++)
        if (!strcmp(m->feat[i].name, name)) return &m->feat[i];
    return NULL;
}

static struct lin_feature *add_feature(struct lin_model *m, const char *name, const json_t *val) {
    struct lin_feature *grown, *f;
    enum lin_type type = json_is_number(val) ? LIN_NUMBER : json_is_boolean(val) ? LIN_BOOL : LIN_STRING;
    int slot = -1;
    if (m->nfeat >= LIN_MAX_DIM) {   /* names are capped like slots */
        m->dropped++;
        return NULL;
    }
    if (type != LIN_STRING && (slot = add_slot(m)) < 0) {
        m->dropped++;
        return NULL;
    }
    grown = realloc(m->feat, sizeof *m->feat * (size_t)(m->nfeat + 1));
    if (!grown) return NULL;
    m->feat = grown;
    f = &m->feat[m->nfeat];
    memset(f, 0, sizeof *f);
    if (!(f->name = strdup(name))) return NULL;
    f->type = type;
    f->slot = slot;
    m->nfeat++;
    return f;
}

/* The text of a value for a string or boolean feature (converted when the type differs). */
static const char *value_text(const json_t *val, char *buf, size_t len) {
    if (json_is_string(val)) return json_string_value(val);
    if (json_is_boolean(val)) return json_is_true(val) ? "true" : "false";
    if (json_is_integer(val)) snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(val));
    else snprintf(buf, len, "%.17g", json_number_value(val));
    return buf;
}

/* The entry of a value the feature has its own slot for (never the overflow entry). */
static struct lin_value *find_value(const struct lin_feature *f, const char *text) {
    for (int v = 0; v < f->nvalues; v++)
        if (!f->values[v].overflow && !strcmp(f->values[v].text, text)) return &f->values[v];
    return NULL;
}

static struct lin_value *overflow_value(const struct lin_feature *f) {
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].overflow) return &f->values[v];
    return NULL;
}

/* The value entry a reward folds into, created when there is room (learning only). */
static struct lin_value *learn_value(struct lin_model *m, struct lin_feature *f, const char *text) {
    struct lin_value *v = find_value(f, text), *grown;
    int overflow = 0, slot = -1;
    if (v) return v;
    if (f->type == LIN_STRING && f->nvalues - (overflow_value(f) ? 1 : 0) >= LIN_MAX_VALUES) {
        if ((v = overflow_value(f))) return v;   /* the cap: values share the overflow slot */
        overflow = 1;
        text = LIN_OVERFLOW_TEXT;
    }
    if (f->type == LIN_STRING && (slot = add_slot(m)) < 0) {
        m->dropped++;
        return NULL;
    }
    grown = realloc(f->values, sizeof *f->values * (size_t)(f->nvalues + 1));
    if (!grown) return NULL;
    f->values = grown;
    v = &f->values[f->nvalues];
    v->text = strdup(text);
    v->arms = calloc((size_t)m->narms, sizeof *v->arms);
    v->slot = slot;
    v->overflow = overflow;
    if (!v->text || !v->arms) {
        free(v->text);
        free(v->arms);
        return NULL;
    }
    if (overflow) f->slot = slot;
    f->nvalues++;
    return v;
}

#define NUM_CLIP 1e12        /* numbers beyond are clipped: running sums of squares stay finite */

static double number_of(const json_t *val, int *ok) {
    *ok = 1;
    if (json_is_number(val)) {
        double v = json_number_value(val);
        return v > NUM_CLIP ? NUM_CLIP : v < -NUM_CLIP ? -NUM_CLIP : v;
    }
    if (json_is_boolean(val)) return json_is_true(val) ? 1.0 : 0.0;
    *ok = 0;
    return 0;
}

static double standardise(const struct lin_feature *f, double v) {
    double sd = f->n >= 2 && f->m2 > 0 ? sqrt(f->m2 / (f->n - 1)) : 1.0;
    double z = (v - f->mean) / sd;
    return z > ZCLIP ? ZCLIP : z < -ZCLIP ? -ZCLIP : z;
}

int lin_encode(const struct lin_model *m, const json_t *ctx, double *x) {
    const char *key;
    json_t *val;
    char buf[64];
    memset(x, 0, sizeof *x * (size_t)m->d);
    x[0] = 1.0;
    if (!json_is_object(ctx)) return m->d;
    json_object_foreach((json_t *)ctx, key, val) {
        const struct lin_feature *f = find_feature(m, key);
        const struct lin_value *v;
        double num;
        int ok;
        if (!f) continue;
        if (f->type == LIN_STRING) {
            v = find_value(f, value_text(val, buf, sizeof buf));
            if (v && v->slot >= 0) x[v->slot] = 1.0;
            else if (!v && f->slot >= 0) x[f->slot] = 1.0;   /* unseen value: the overflow slot */
            continue;
        }
        num = number_of(val, &ok);
        if (!ok) continue;
        x[f->slot] = f->type == LIN_BOOL ? (num != 0.0) : standardise(f, num);
    }
    return m->d;
}

/* Grows the encoder with ctx, updates feature statistics and encodes into x. */
static void learn_encode(struct lin_model *m, int arm, double reward, const json_t *ctx, double *x) {
    const char *key;
    json_t *val;
    char buf[64];
    if (json_is_object(ctx)) {
        json_object_foreach((json_t *)ctx, key, val) {
            struct lin_feature *f = find_feature(m, key);
            struct lin_value *v;
            double num, delta;
            int ok;
            if (!f && !(f = add_feature(m, key, val))) continue;
            if (f->type == LIN_NUMBER) {
                if (!(num = number_of(val, &ok), ok)) continue;
                f->n += 1;
                delta = num - f->mean;
                f->mean += delta / f->n;
                f->m2 += delta * (num - f->mean);
                continue;
            }
            if (f->type == LIN_BOOL && !(number_of(val, &ok), ok)) continue;
            if (f->type == LIN_BOOL) val = json_boolean(number_of(val, &ok) != 0.0);
            if ((v = learn_value(m, f, value_text(val, buf, sizeof buf)))) {
                v->arms[arm].n++;
                v->arms[arm].sum += reward;
                v->arms[arm].sumsq += reward * reward;
            }
        }
    }
    lin_encode(m, ctx, x);
}

/* out = inverse of the symmetric positive definite d×d matrix a (row stride `stride`), by
 * Cholesky. Returns 0 when a is not positive definite (out untouched). */
static int spd_inverse(const double *a, double *out, int d, int stride) {
    double *l = malloc(sizeof *l * (size_t)d * (size_t)d * 2), *linv;
    int ok = 0;
    if (!l) return 0;
    linv = l + (size_t)d * d;
    for (int i = 0; i < d; i++) {
        for (int j = 0; j <= i; j++) {
            double s = a[(size_t)i * stride + j];
            for (int k = 0; k < j; k++) s -= l[i * d + k] * l[j * d + k];
            if (i == j) {
                if (!(s > 0)) goto done;
                l[i * d + i] = sqrt(s);
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    for (int j = 0; j < d; j++) {   /* L⁻¹, lower triangular, column by column */
        for (int i = 0; i < d; i++) {
            double s = i == j ? 1.0 : 0.0;
            if (i < j) {
                linv[i * d + j] = 0;
                continue;
            }
            for (int k = j; k < i; k++) s -= l[i * d + k] * linv[k * d + j];
            linv[i * d + j] = s / l[i * d + i];
        }
    }
    for (int i = 0; i < d; i++)     /* A⁻¹ = L⁻ᵀ L⁻¹ */
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = i; k < d; k++) s += linv[k * d + i] * linv[k * d + j];
            out[(size_t)i * stride + j] = out[(size_t)j * stride + i] = s;
        }
    ok = 1;
done:
    free(l);
    return ok;
}

void lin_update(struct lin_model *m, int arm, double reward, const json_t *ctx) {
    double x[LIN_MAX_DIM], u[LIN_MAX_DIM], delta;
    double *ai, *b, *th;
    int d, c;
    if (arm < 0 || arm >= m->narms || !isfinite(reward)) return;
    m->rn += 1;
    delta = reward - m->rmean;
    m->rmean += delta / m->rn;
    m->rm2 += delta * (reward - m->rmean);
    learn_encode(m, arm, reward, ctx, x);
    d = m->d;
    c = m->cap;
    ai = BLOCK(m, m->ainv, arm);
    b = VEC(m, m->b, arm);
    th = VEC(m, m->theta, arm);
    if (m->a) {
        double *a = BLOCK(m, m->a, arm), g = m->discount;
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++)
                a[(size_t)i * c + j] = g * a[(size_t)i * c + j] + x[i] * x[j] + (i == j ? (1 - g) * m->lambda : 0);
            b[i] = g * b[i] + reward * x[i];
        }
        spd_inverse(a, ai, d, c);   /* A ⪰ λ(1−γ)I + ... stays positive definite */
    } else {
        double den = 1.0;
        for (int i = 0; i < d; i++) {     /* u = A⁻¹x (A⁻¹ is symmetric) */
            double s = 0;
            for (int j = 0; j < d; j++) s += ai[(size_t)i * c + j] * x[j];
            u[i] = s;
            den += x[i] * s;
        }
        for (int i = 0; i < d; i++)       /* Sherman–Morrison: A⁻¹ −= uuᵀ / (1 + xᵀA⁻¹x) */
            for (int j = 0; j < d; j++) ai[(size_t)i * c + j] -= u[i] * u[j] / den;
        for (int i = 0; i < d; i++) b[i] += reward * x[i];
    }
    for (int i = 0; i < d; i++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += ai[(size_t)i * c + j] * b[j];
        th[i] = s;
    }
    m->arm_updates[arm]++;
}

/* The reward noise scale σ̂: the deviation of all rewards seen (0.5 before there are two). */
static double noise_sd(const struct lin_model *m) {
    double var = m->rn >= 2 ? m->rm2 / (m->rn - 1) : 0.25;
    double fl = 1e-6 * (1.0 + fabs(m->rmean));
    return var > fl * fl ? sqrt(var) : fl;
}

void lin_predict(const struct lin_model *m, const double *x, double *mu, double *sd) {
    int d = m->d, c = m->cap;
    double sigma = noise_sd(m);
    for (int arm = 0; arm < m->narms; arm++) {
        const double *ai = BLOCK(m, m->ainv, arm), *th = VEC(m, m->theta, arm);
        double mean = 0, q = 0;
        for (int i = 0; i < d; i++) {
            double s = 0;
            if (x[i] == 0.0) continue;   /* one-hot vectors are mostly zeros */
            mean += th[i] * x[i];
            for (int j = 0; j < d; j++) s += ai[(size_t)i * c + j] * x[j];
            q += x[i] * s;
        }
        mu[arm] = mean;
        sd[arm] = sigma * sqrt(q > 0 ? q : 0);
    }
}

/* Gauss–Legendre nodes and weights on [−1, 1], found once by Newton's method on the Legendre
 * recurrence. */
static double gl_x[GL_NODES], gl_w[GL_NODES];
static pthread_once_t gl_once = PTHREAD_ONCE_INIT;

static void gl_init(void) {
    const int n = GL_NODES;
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), z1, p1, p2, p3, pp = 1;
        for (int it = 0; it < 100; it++) {
            p1 = 1.0;
            p2 = 0.0;
            for (int j = 0; j < n; j++) {
                p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j + 1.0) * z * p2 - j * p3) / (j + 1);
            }
            pp = n * (z * p1 - p2) / (z * z - 1.0);
            z1 = z;
            z = z1 - p1 / pp;
            if (fabs(z - z1) <= 1e-15) break;
        }
        gl_x[i] = -z;
        gl_x[n - 1 - i] = z;
        gl_w[i] = gl_w[n - 1 - i] = 2.0 / ((1.0 - z * z) * pp * pp);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double norm_cdf(double z) {
    return 0.5 * erfc(-z / M_SQRT2);
}

/* Π_{j≠i} P(X_j < t). */
static double others_below(const double *mu, const double *sd, int k, int i, double t) {
    double prod = 1.0;
    for (int j = 0; j < k && prod > 0; j++) {
        if (j == i) continue;
        if (sd[j] > 0) prod *= norm_cdf((t - mu[j]) / sd[j]);
        else prod *= t > mu[j] ? 1.0 : t == mu[j] ? 0.5 : 0.0;
    }
    return prod;
}

/* P(X_i is the largest) = E_Z[Π_{j≠i} Φ((μ_i + s_i Z − μ_j) / s_j)], Z ~ N(0,1). The integrand
 * steps up near z = (μ_j − μ_i)/s_i over a width of ~s_j/s_i, which can be far narrower than
 * the normal density: the range is cut into pieces of at most 2.5 (and of two widths across
 * each narrow step, to ±6 widths) and each piece gets its own Gauss–Legendre rule, so narrow
 * and wide arms are integrated equally well. */
static double prob_largest(const double *mu, const double *sd, int k, int i) {
    static const double fixed[] = {-Z_RANGE, -6, -4, -2, 0, 2, 4, 6, Z_RANGE};   /* short pieces */
    double cuts[7 * Q_MAX_ARMS + 9], p = 0;
    int nc = 0;
    if (!(sd[i] > 0)) return others_below(mu, sd, k, i, mu[i]);
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) cuts[nc++] = fixed[f];
    for (int j = 0; j < k; j++) {
        double c, w;
        if (j == i) continue;
        c = (mu[j] - mu[i]) / sd[i];
        w = sd[j] / sd[i];
        if (w > 0.5) continue;   /* a step as gentle as the density itself: the fixed pieces do */
        for (int m = -3; m <= 3; m++) {
            double cut = c + 2.0 * m * w;
            if (cut > -Z_RANGE && cut < Z_RANGE) cuts[nc++] = cut;
        }
    }
    qsort(cuts, (size_t)nc, sizeof *cuts, cmp_double);
    for (int c = 0; c + 1 < nc; c++) {
        double a = cuts[c], b = cuts[c + 1], half = (b - a) / 2, mid = (a + b) / 2;
        if (!(half > 0)) continue;
        for (int g = 0; g < GL_NODES; g++) {
            double z = mid + half * gl_x[g];
            p += half * gl_w[g] * exp(-0.5 * z * z) * others_below(mu, sd, k, i, mu[i] + sd[i] * z);
        }
    }
    return p / sqrt(2.0 * M_PI);
}

void lin_max_probabilities(const double *mu, const double *sd, int k, rng_t *rng, double *probs) {
    double total = 0;
    if (k > Q_MAX_ARMS) {
        for (int i = 0; i < k; i++) probs[i] = 0;
        for (int dr = 0; dr < MC_DRAWS; dr++) {
            int best = 0;
            double bv = -INFINITY;
            for (int i = 0; i < k; i++) {
                double v = mu[i] + sd[i] * sample_normal(rng);
                if (v > bv) {
                    bv = v;
                    best = i;
                }
            }
            probs[best] += 1;
        }
        /* Add-half smoothing: an arm that won no simulated draw still has a real, small chance. */
        for (int i = 0; i < k; i++) total += probs[i] += 0.5;
    } else {
        pthread_once(&gl_once, gl_init);
        for (int i = 0; i < k; i++) {
            probs[i] = prob_largest(mu, sd, k, i);
            total += probs[i];
        }
    }
    for (int i = 0; i < k; i++) probs[i] = total > 0 ? probs[i] / total : 1.0 / k;
}
