/* eval_api.c — the logged decisions, taken out and weighed. GET /api/export/{id} writes a
 * test's decision records with their rewards as (context, variant, propensity, reward) in JSON
 * lines, CSV or Vowpal Wabbit's contextual-bandit format; POST /api/evaluate/{id} estimates how
 * another policy would have done on them (IPS, SNIPS, doubly robust: bandit/offpolicy.h).
 * Both read the store in slices (store_scan_outcomes) and are bounded by `limit` rows; an
 * export is built in memory and refused past EXPORT_MAX_BYTES rather than cut short. An
 * evaluation scans twice — first for each variant's mean reward (DR's reward model), then to
 * weigh every row — so that no context outlives its row: memory is a few numbers per row.
 * Weighing by the test's current model computes its probabilities once per distinct context
 * (contexts repeat: devices, countries), within a budget: for many variants each costs a
 * Monte Carlo estimate, and a request must not run for minutes. */
#include "api/api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "api/api_util.h"
#include "bandit/offpolicy.h"
#include "util/util.h"

#define EVAL_MAX_ROWS 100000                 /* rows per export or evaluation: `limit`'s cap */
#define EXPORT_MAX_BYTES (128u * 1024 * 1024) /* a larger export is refused: narrow since/limit */
#define PROBABILITY_SLACK 1e-6               /* how far given probabilities may miss a sum of 1 */
/* How much of the current model's work one evaluation may ask for. The probabilities at one
 * context cost about k·min(k, 16) units of ~1.5 µs for k variants (quadrature over k² pairs
 * up to 16 variants, Monte Carlo over k arms beyond): the budget is ~3 s at the worst, 2 to 4
 * variants never reach it within EVAL_MAX_ROWS, 256 variants reach it at 488 distinct
 * contexts. Past it the request is refused (400). */
#define EVAL_MODEL_BUDGET 2000000

/* Which decisions a request reads, and what a decision without a reward counts as. */
struct log_window {
    double since;
    long limit;
    int has_missing;
    double missing;
};

/* The reward a decision earned: the sum of its rewards; without any, the default reward once
 * its window closed; else missing_reward when the caller gave one. 0 when it has none. */
static int outcome_reward(const struct store_outcome *o, const struct log_window *w, double *out) {
    if (o->rewards > 0) *out = o->reward_sum;
    else if (o->settled && o->has_default) *out = o->default_reward;
    else if (w->has_missing) *out = w->missing;
    else return 0;
    return 1;
}

/* The logged propensity when it can weigh a row (in (0, 1], rounding above 1 forgiven), else 0. */
static double usable_propensity(double p) {
    if (!(p > 0) || !(p <= 1 + 1e-9)) return 0;
    return p > 1 ? 1 : p;
}

/* Shortest of %.15g..%.17g that reads back as v: "0.1", not "0.10000000000000001". */
static void format_number(double v, char *buf, size_t len) {
    if (v == 0) v = 0;   /* no "-0" */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* ---- export ------------------------------------------------------------------------ */

enum export_format { FORMAT_JSONL, FORMAT_CSV, FORMAT_VW };

static const struct {
    const char *name, *content_type, *extension;
} FORMATS[] = {
    [FORMAT_JSONL] = {"jsonl", "application/x-ndjson", "jsonl"},
    [FORMAT_CSV] = {"csv", "text/csv; charset=utf-8", "csv"},
    [FORMAT_VW] = {"vw", "text/plain; charset=utf-8", "vw"},
};

/* The answer being built: grows by doubling up to EXPORT_MAX_BYTES. */
struct out_buf {
    char *p;          /* owned */
    size_t len, cap;
    int full, nomem;  /* set once; later writes are ignored */
};

static void out_add(struct out_buf *b, const char *s, size_t n) {
    if (b->full || b->nomem) return;
    if (n > EXPORT_MAX_BYTES - b->len) {
        b->full = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->nomem = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void out_str(struct out_buf *b, const char *s) {
    out_add(b, s, strlen(s));
}

static void out_printf(struct out_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out_buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) out_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void out_number(struct out_buf *b, double v) {
    char tmp[40];
    format_number(v, tmp, sizeof tmp);
    out_str(b, tmp);
}

/* One CSV text field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or
 * line break. Text a spreadsheet would run as a formula (=, +, -, @, tab or CR first) gets a
 * leading apostrophe: client-chosen request ids and labels must not become formulas. */
static void out_csv_field(struct out_buf *b, const char *s) {
    int formula = *s && strchr("=+-@\t\r", *s) != NULL;
    if (!formula && !strpbrk(s, ",\"\r\n")) {
        out_str(b, s);
        return;
    }
    out_add(b, "\"", 1);
    if (formula) out_add(b, "'", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        out_add(b, s, (size_t)(q - s));
        out_add(b, "\"\"", 2);
    }
    out_str(b, s);
    out_add(b, "\"", 1);
}

/* A VW feature name or value: the characters VW splits on (whitespace, '|', ':') and other
 * control characters become '_', so a line always parses as one example. */
static void out_vw_token(struct out_buf *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char x = c <= ' ' || c == '|' || c == ':' || c == 0x7f ? '_' : (char)c;
        out_add(b, &x, 1);
    }
}

struct export_ctx {
    struct experiment *e;
    enum export_format fmt;
    const struct log_window *w;
    struct out_buf out;
};

static void export_jsonl(struct export_ctx *x, const struct store_outcome *o, int arm, json_t *ctx, double reward) {
    json_t *row = json_object();
    char *line;
    json_object_set_new(row, "request_id", json_string(o->request_id));
    json_object_set_new(row, "created", json_real(o->created));
    json_object_set_new(row, "context", ctx ? json_incref(ctx) : json_null());
    json_object_set_new(row, "variant_id", json_integer(o->variant_id));
    json_object_set_new(row, "variant", json_incref(x->e->variants[arm].label));
    json_object_set_new(row, "propensity", json_real(o->propensity));
    json_object_set_new(row, "reward", json_real(reward));
    line = json_dumps(row, JSON_COMPACT);
    if (line) {
        out_str(&x->out, line);
        out_add(&x->out, "\n", 1);
    } else {
        x->out.nomem = 1;
    }
    free(line);
    json_decref(row);
}

#define CSV_HEADER "request_id,created,variant_id,variant,propensity,reward,context\r\n"

static void export_csv(struct export_ctx *x, const struct store_outcome *o, int arm, json_t *ctx, double reward) {
    char *text = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
    out_csv_field(&x->out, o->request_id);
    out_printf(&x->out, ",%.6f,%ld,", o->created, o->variant_id);
    out_csv_field(&x->out, x->e->variants[arm].key);
    out_add(&x->out, ",", 1);
    out_number(&x->out, o->propensity);
    out_add(&x->out, ",", 1);
    out_number(&x->out, reward);
    out_add(&x->out, ",", 1);
    out_csv_field(&x->out, text ? text : "null");
    out_add(&x->out, "\r\n", 2);
    free(text);
}

/* `action:cost:probability | features`: action is the 1-based index of the variant (sorted by
 * id), cost the negated reward; strings and booleans are `name=value`, numbers `name:value`. */
static void export_vw(struct export_ctx *x, const struct store_outcome *o, int arm, json_t *ctx, double reward) {
    const char *key;
    json_t *v;
    out_printf(&x->out, "%d:", arm + 1);
    out_number(&x->out, -reward);
    out_add(&x->out, ":", 1);
    out_number(&x->out, usable_propensity(o->propensity));
    out_add(&x->out, " |", 2);
    json_object_foreach(ctx, key, v) {
        out_add(&x->out, " ", 1);
        out_vw_token(&x->out, key);
        if (json_is_number(v)) {
            out_add(&x->out, ":", 1);
            out_number(&x->out, json_number_value(v));
        } else if (json_is_boolean(v)) {
            out_str(&x->out, json_is_true(v) ? "=true" : "=false");
        } else if (json_is_string(v)) {
            out_add(&x->out, "=", 1);
            out_vw_token(&x->out, json_string_value(v));
        }
    }
    out_add(&x->out, "\n", 1);
}

static int export_row(void *ud, const struct store_outcome *o) {
    struct export_ctx *x = ud;
    int arm = experiment_index_of_id(x->e, o->variant_id);
    double reward;
    json_t *ctx;
    if (arm < 0 || !outcome_reward(o, x->w, &reward)) return 0;
    /* VW divides by the probability: a row that cannot be weighed is left out of that format. */
    if (x->fmt == FORMAT_VW && usable_propensity(o->propensity) == 0) return 0;
    ctx = o->context ? json_loads(o->context, 0, NULL) : NULL;
    if (x->fmt == FORMAT_JSONL) export_jsonl(x, o, arm, ctx, reward);
    else if (x->fmt == FORMAT_CSV) export_csv(x, o, arm, ctx, reward);
    else export_vw(x, o, arm, ctx, reward);
    json_decref(ctx);
    return x->out.full || x->out.nomem;
}

/* A number query argument: 1 when absent or valid (*present says which), 0 after answering 400. */
static int query_number(const struct http_req *req, const char *name, int *present, double *out,
                        struct http_resp *resp) {
    const char *s = http_query(req, name);
    char *end;
    *present = 0;
    if (!s) return 1;
    *out = strtod(s, &end);
    if (!*s || *end || !isfinite(*out)) {
        http_error(resp, 400, "%s must be a number, got '%.*s'", name, util_utf8_prefix(s, 32), s);
        return 0;
    }
    *present = 1;
    return 1;
}

static int read_export_query(const struct http_req *req, enum export_format *fmt, struct log_window *w,
                             struct http_resp *resp) {
    const char *f = http_query(req, "format"), *lim = http_query(req, "limit");
    int present;
    *fmt = FORMAT_JSONL;
    if (f) {
        size_t i;
        for (i = 0; i < sizeof FORMATS / sizeof *FORMATS && strcmp(f, FORMATS[i].name); i++) {
        }
        if (i == sizeof FORMATS / sizeof *FORMATS) {
            http_error(resp, 400, "format must be 'jsonl', 'csv' or 'vw'");
            return 0;
        }
        *fmt = (enum export_format)i;
    }
    w->since = 0;
    w->limit = EVAL_MAX_ROWS;
    if (lim && (!util_parse_index(lim, EVAL_MAX_ROWS, &w->limit) || w->limit < 1)) {
        http_error(resp, 400, "limit must be an integer between 1 and %d", EVAL_MAX_ROWS);
        return 0;
    }
    if (!query_number(req, "since", &present, &w->since, resp)) return 0;
    if (!present) w->since = 0;
    return query_number(req, "missing_reward", &w->has_missing, &w->missing, resp);
}

void api_export(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    struct log_window w;
    struct export_ctx x = {0};
    int rc;
    if (!e) return;
    if (!read_export_query(req, &x.fmt, &w, resp)) goto done;
    x.e = e;
    x.w = &w;
    store_flush(app->store);   /* include every decision answered before this request */
    if (x.fmt == FORMAT_CSV) out_str(&x.out, CSV_HEADER);
    rc = store_scan_outcomes(app->store, e->id, w.since, w.limit, export_row, &x);
    if (x.out.full) {
        http_error(resp, 400, "the export is larger than %u MiB: narrow it with since and limit",
                   EXPORT_MAX_BYTES >> 20);
    } else if (x.out.nomem || rc == SCOUT_ENOMEM) {
        http_error(resp, 503, "out of memory");
    } else if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
    } else {
        if (x.out.p) {   /* hand the buffer over instead of copying it */
            json_decref(resp->json);
            resp->json = NULL;
            free(resp->body);
            resp->body = x.out.p;
            resp->body_len = x.out.len;
            resp->status = 200;
            resp->content_type = FORMATS[x.fmt].content_type;
            x.out.p = NULL;
        } else {
            http_raw(resp, 200, FORMATS[x.fmt].content_type, "", 0);
        }
        http_header_add(resp, "Content-Disposition", "attachment; filename=\"scout-%s.%s\"", e->id,
                        FORMATS[x.fmt].extension);
    }
done:
    free(x.out.p);
    experiment_unref(e);
}

/* ---- evaluate ---------------------------------------------------------------------- */

/* Reads the target policy into probs[nvariants], or sets *current for the test's own model;
 * 0 after answering 422 (wrong shape) or 400 (invalid value). */
static int read_target(const struct experiment *e, const json_t *policy, double *probs, int *current,
                       struct http_resp *resp) {
    const char *key;
    json_t *v, *given;
    double sum = 0;
    int k = e->nvariants, arm;
    char named[SCOUT_MAX_VARIANTS] = {0};
    *current = 0;
    for (int i = 0; i < k; i++) probs[i] = 0;
    if (!policy || json_is_null(policy)) {
        http_error(resp, 422, "field 'policy' is required: \"uniform\", \"current\", {\"variant\": ...} or "
                              "{\"probabilities\": {...}}");
        return 0;
    }
    if (json_is_string(policy)) {
        if (!strcmp(json_string_value(policy), "current")) {
            *current = 1;
        } else if (!strcmp(json_string_value(policy), "uniform")) {
            for (int i = 0; i < k; i++) probs[i] = 1.0 / k;
        } else {
            http_error(resp, 400, "policy must be \"uniform\", \"current\", {\"variant\": ...} or {\"probabilities\": {...}}");
            return 0;
        }
        return 1;
    }
    if (!json_is_object(policy) || json_object_size(policy) != 1 ||
        (!json_object_get(policy, "variant") && !json_object_get(policy, "probabilities"))) {
        http_error(resp, 422, "policy must be \"uniform\", \"current\", or an object with one field: 'variant' or "
                              "'probabilities'");
        return 0;
    }
    if ((v = json_object_get(policy, "variant"))) {
        if (!json_is_string(v) && !json_is_number(v)) {
            http_error(resp, 422, "policy.variant must be a variant's label or id");
            return 0;
        }
        if ((arm = experiment_find_variant(e, v)) < 0) {
            http_error(resp, 400, "policy.variant names a variant this model does not have");
            return 0;
        }
        probs[arm] = 1;
        return 1;
    }
    given = json_object_get(policy, "probabilities");
    if (!json_is_object(given) || json_object_size(given) == 0) {
        http_error(resp, 422, "policy.probabilities must be an object of label: probability");
        return 0;
    }
    json_object_foreach(given, key, v) {
        json_t *ref = json_string(key);
        arm = ref ? experiment_find_variant(e, ref) : -1;
        json_decref(ref);
        if (arm < 0) {
            http_error(resp, 400, "policy.probabilities names '%.*s', a variant this model does not have",
                       util_utf8_prefix(key, 64), key);
            return 0;
        }
        if (!json_is_number(v)) {
            http_error(resp, 422, "policy.probabilities values must be numbers");
            return 0;
        }
        if (!(json_number_value(v) >= 0 && json_number_value(v) <= 1)) {
            http_error(resp, 400, "policy.probabilities values must lie in [0, 1]");
            return 0;
        }
        if (named[arm]) {   /* a label and an id naming the same variant */
            http_error(resp, 400, "policy.probabilities names variant %ld twice", e->variants[arm].id);
            return 0;
        }
        named[arm] = 1;
        probs[arm] = json_number_value(v);
        sum += probs[arm];
    }
    if (fabs(sum - 1) > PROBABILITY_SLACK) {
        http_error(resp, 400, "policy.probabilities must add up to 1 (they add up to %g)", sum);
        return 0;
    }
    for (int i = 0; i < k; i++) probs[i] /= sum;
    return 1;
}

/* Reads since, limit and missing_reward of the body; 0 after answering. */
static int read_eval_window(const json_t *body, struct log_window *w, struct http_resp *resp) {
    json_t *v;
    w->since = 0;
    w->limit = EVAL_MAX_ROWS;
    w->has_missing = 0;
    if ((v = json_object_get(body, "since")) && !json_is_null(v)) {
        if (!json_is_number(v)) {
            http_error(resp, 422, "field 'since' must be a number (epoch seconds)");
            return 0;
        }
        w->since = json_number_value(v);
    }
    if ((v = json_object_get(body, "limit")) && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            http_error(resp, 422, "field 'limit' must be an integer");
            return 0;
        }
        if (json_integer_value(v) < 1 || json_integer_value(v) > EVAL_MAX_ROWS) {
            http_error(resp, 400, "limit must be between 1 and %d", EVAL_MAX_ROWS);
            return 0;
        }
        w->limit = (long)json_integer_value(v);
    }
    if ((v = json_object_get(body, "missing_reward")) && !json_is_null(v)) {
        if (!json_is_number(v)) {
            http_error(resp, 422, "field 'missing_reward' must be a number");
            return 0;
        }
        w->has_missing = 1;
        w->missing = json_number_value(v);
    }
    return 1;
}

/* First scan: each variant's reward sum and count, for DR's reward model. */
struct model_scan {
    struct experiment *e;
    const struct log_window *w;
    double *sum, *count;
};

static int model_row(void *ud, const struct store_outcome *o) {
    struct model_scan *m = ud;
    int arm = experiment_index_of_id(m->e, o->variant_id);
    double r;
    if (arm < 0 || usable_propensity(o->propensity) == 0 || !outcome_reward(o, m->w, &r)) return 0;
    m->sum[arm] += r;
    m->count[arm] += 1;
    return 0;
}

/* The current model's probabilities by context, keyed by a hash of the context text (a key
 * costs 32 bytes however large the context). */
struct prob_cache {
    json_t *slots;            /* hex hash → slot index; owned */
    double *probs;            /* slot × nvariants; owned */
    size_t n, cap, max;       /* max: EVAL_MODEL_BUDGET / cost of one context */
    int over;                 /* the budget ran out */
};

/* The current model's probabilities for a row's context (NULL: none), computed on first
 * sight. NULL when out of memory or over the budget (p->over says which). */
static const double *current_probabilities(struct prob_cache *p, struct experiment *e, int min_updates,
                                           const char *context) {
    unsigned char h[16];
    char key[2 * sizeof h + 1];
    size_t k = (size_t)e->nvariants;
    json_t *slot, *ctx;
    if (context) {
        crypto_generichash(h, sizeof h, (const unsigned char *)context, strlen(context), NULL, 0);
        sodium_bin2hex(key, sizeof key, h, sizeof h);
    } else {
        snprintf(key, sizeof key, "-");   /* no context: never a hash's hex */
    }
    if ((slot = json_object_get(p->slots, key))) return p->probs + (size_t)json_integer_value(slot) * k;
    if (p->n == p->max) {
        p->over = 1;
        return NULL;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        double *probs = realloc(p->probs, (cap < p->max ? cap : p->max) * k * sizeof *probs);
        if (!probs) return NULL;
        p->probs = probs;
        p->cap = cap < p->max ? cap : p->max;
    }
    if (json_object_set_new(p->slots, key, json_integer((json_int_t)p->n)) != 0) return NULL;
    ctx = context ? json_loads(context, 0, NULL) : NULL;
    experiment_probabilities(e, ctx, min_updates, p->probs + p->n * k);
    json_decref(ctx);
    return p->probs + p->n++ * k;
}

/* Second scan: every row weighed by the target policy. */
struct eval_scan {
    struct experiment *e;
    const struct log_window *w;
    const double *fixed;      /* the target's probabilities, or NULL: the test's current model */
    int min_updates;
    struct prob_cache cache;  /* for the current model */
    const double *model;      /* ĝ */
    struct ope_row *rows;     /* owned */
    size_t n, cap;
    long skipped;
    int nomem;
};

static int eval_row(void *ud, const struct store_outcome *o) {
    struct eval_scan *x = ud;
    int arm = experiment_index_of_id(x->e, o->variant_id);
    double r, p = usable_propensity(o->propensity);
    const double *pi = x->fixed;
    if (arm < 0 || p == 0 || !outcome_reward(o, x->w, &r)) {
        x->skipped++;
        return 0;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 1024;
        if (cap > (size_t)x->w->limit) cap = (size_t)x->w->limit;
        struct ope_row *rows = cap > x->n ? realloc(x->rows, cap * sizeof *rows) : NULL;
        if (!rows) {
            x->nomem = 1;
            return 1;
        }
        x->rows = rows;
        x->cap = cap;
    }
    if (!pi && !(pi = current_probabilities(&x->cache, x->e, x->min_updates, o->context))) {
        x->nomem = !x->cache.over;
        return 1;
    }
    x->rows[x->n++] = (struct ope_row){arm, p, r, fmin(fmax(pi[arm], 0), 1), ope_direct(pi, x->model, x->e->nvariants)};
    return 0;
}

static json_t *estimate_json(const struct ope_estimate *s) {
    return json_pack("{s:o, s:o, s:o}", "estimate", s->defined ? json_real(s->estimate) : json_null(), "ci_low",
                     s->has_ci ? json_real(s->ci_low) : json_null(), "ci_high",
                     s->has_ci ? json_real(s->ci_high) : json_null());
}

void api_evaluate(struct app *app, const struct http_req *req, struct http_resp *resp) {
    struct experiment *e = api_get_test(app, req, resp);
    json_t *body = NULL, *policy;
    struct log_window w;
    struct eval_scan x = {0};
    struct model_scan m = {0};
    struct ope_result res;
    double *fixed = NULL, *model = NULL;
    int current, rc;
    if (!e) return;
    if (!http_parse_body(req, resp, &body)) goto done;
    if (!json_is_object(body)) {
        http_error(resp, 422, "body must be a JSON object");
        goto done;
    }
    fixed = calloc((size_t)e->nvariants, sizeof *fixed);
    model = calloc((size_t)e->nvariants, sizeof *model);
    x.cache.slots = json_object();
    x.cache.max = EVAL_MODEL_BUDGET / ((size_t)e->nvariants * (size_t)(e->nvariants < 16 ? e->nvariants : 16));
    m.sum = calloc((size_t)e->nvariants, sizeof *m.sum);
    m.count = calloc((size_t)e->nvariants, sizeof *m.count);
    if (!fixed || !model || !x.cache.slots || !m.sum || !m.count) {
        http_error(resp, 503, "out of memory");
        goto done;
    }
    policy = json_object_get(body, "policy");
    if (!read_target(e, policy, fixed, &current, resp) || !read_eval_window(body, &w, resp)) goto done;
    store_flush(app->store);   /* include every decision answered before this request */

    m.e = e;
    m.w = &w;
    rc = store_scan_outcomes(app->store, e->id, w.since, w.limit, model_row, &m);
    if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
        goto done;
    }
    ope_reward_model(m.sum, m.count, e->nvariants, model);

    x.e = e;
    x.w = &w;
    x.fixed = current ? NULL : fixed;
    x.min_updates = api_min_updates(app, e);
    x.model = model;
    rc = store_scan_outcomes(app->store, e->id, w.since, w.limit, eval_row, &x);
    if (x.cache.over) {
        http_error(resp, 400, "the current model would have to be evaluated at more than %zu distinct contexts "
                              "(%d variants): narrow since or limit", x.cache.max, e->nvariants);
        goto done;
    }
    if (x.nomem || rc == SCOUT_ENOMEM) {
        http_error(resp, 503, "out of memory");
        goto done;
    }
    if (rc != SCOUT_OK) {
        api_store_error(resp, rc);
        goto done;
    }
    if (ope_evaluate(x.rows, x.n, model, e->nvariants, &res) != SCOUT_OK) {
        http_error(resp, 500, "the logged rows could not be weighed");
        goto done;
    }
    http_json(resp, 200,
              json_pack("{s:I, s:I, s:O, s:o, s:o, s:o, s:o, s:f}", "rows", (json_int_t)res.n, "skipped_rows",
                        (json_int_t)x.skipped, "target", policy, "logged", estimate_json(&res.logged), "ips",
                        estimate_json(&res.ips), "snips", estimate_json(&res.snips), "dr", estimate_json(&res.dr),
                        "effective_sample_size", res.ess));
done:
    free(x.rows);
    json_decref(x.cache.slots);
    free(x.cache.probs);
    free(m.sum);
    free(m.count);
    free(fixed);
    free(model);
    json_decref(body);
    experiment_unref(e);
}
