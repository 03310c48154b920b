/* learning_stats.c — the statistics of /api/model_details that explain what a test learned:
 * the contextual model (per feature: standardisation and weights, or per value the reward
 * statistics of every variant with credible intervals and probability of being best) and the
 * sample-ratio-mismatch check of observed traffic against logged probabilities. Reads only
 * copies (a policy snapshot, the SRM counters), never the live state. */
#include "api/api_util.h"

#include <math.h>
#include <stdlib.h>

#include "bandit/rng.h"
#include "bandit/stats.h"

#define VALUE_DRAWS 400       /* Monte Carlo draws per feature value (bounded: ≤ 128 values) */
#define SRM_ALPHA 0.001       /* p-value under which traffic is flagged as mismatched */

/* Per-variant statistics of the rewards seen with one feature value. */
static json_t *value_stats(const struct experiment *e, const struct policy *snap, const struct lin_value *v) {
    struct policy tmp;
    struct arm_summary *sum = calloc((size_t)e->nvariants, sizeof *sum);
    json_t *out = json_object();
    if (!sum || policy_init(&tmp, POLICY_THOMPSON, e->nvariants, 0, 1.0) != SCOUT_OK) {
        free(sum);
        return out;
    }
    /* The same posterior as the test's own, on the rewards of this value only. */
    tmp.rmin = snap->rmin;
    tmp.rmax = snap->rmax;
    for (int i = 0; i < e->nvariants; i++) {
        struct arm_stats *a = &tmp.arms[i];
        a->n = v->arms[i].n;
        a->sum = a->ws = v->arms[i].sum;
        a->sumsq = a->wss = v->arms[i].sumsq;
        a->w = (double)a->n;
        tmp.updates += a->n;
    }
    if (tmp.updates == 0) tmp.updates = snap->updates;   /* keeps the test's reward model */
    policy_summarize(&tmp, rng_thread(), VALUE_DRAWS, sum);
    for (int i = 0; i < e->nvariants; i++)
        json_object_set_new(out, e->variants[i].key,
                            json_pack("{s:I, s:f, s:f, s:f, s:f}", "rewards", (json_int_t)v->arms[i].n, "mean",
                                      sum[i].mean, "ci_low", sum[i].ci_low, "ci_high", sum[i].ci_high,
                                      "probability_best", sum[i].prob_best));
    policy_free(&tmp);
    free(sum);
    return out;
}

static json_t *feature_json(const struct experiment *e, const struct policy *snap, const struct lin_feature *f) {
    static const char *types[] = {[LIN_NUMBER] = "number", [LIN_BOOL] = "boolean", [LIN_STRING] = "string"};
    const struct lin_model *m = snap->lin;
    json_t *out = json_pack("{s:s, s:s}", "name", f->name, "type", types[f->type]);
    if (f->type == LIN_NUMBER) {
        json_t *coef = json_object();
        double sd = f->n >= 2 && f->m2 > 0 ? sqrt(f->m2 / (f->n - 1)) : 1.0;
        for (int i = 0; i < e->nvariants; i++)
            json_object_set_new(coef, e->variants[i].key, json_real(m->theta[(size_t)i * m->cap + f->slot]));
        json_object_set_new(out, "mean", json_real(f->mean));
        json_object_set_new(out, "sd", json_real(sd));
        json_object_set_new(out, "coefficients", coef);
        return out;
    }
    json_t *values = json_array();
    for (int v = 0; v < f->nvalues; v++)
        json_array_append_new(values, json_pack("{s:s, s:b, s:o}", "value", f->values[v].text, "overflow",
                                                f->values[v].overflow, "variants",
                                                value_stats(e, snap, &f->values[v])));
    json_object_set_new(out, "values", values);
    return out;
}

json_t *api_contextual_model(const struct experiment *e, const struct policy *snap) {
    const struct lin_model *m = snap->lin;
    json_t *features;
    if (!m) return json_null();
    features = json_array();
    for (int i = 0; i < m->nfeat; i++) json_array_append_new(features, feature_json(e, snap, &m->feat[i]));
    return json_pack("{s:i, s:I, s:o}", "dimension", m->d, "dropped_values", (json_int_t)m->dropped, "features",
                     features);
}

json_t *api_srm(struct experiment *e) {
    uint64_t *obs = calloc((size_t)e->nvariants, sizeof *obs);
    double *exp_n = calloc((size_t)e->nvariants, sizeof *exp_n), chi2 = 0, p;
    json_t *observed = json_object(), *expected = json_object();
    int df = -1;
    if (obs && exp_n) {
        experiment_srm(e, obs, exp_n);
        for (int i = 0; i < e->nvariants; i++) {
            json_object_set_new(observed, e->variants[i].key, json_integer((json_int_t)obs[i]));
            json_object_set_new(expected, e->variants[i].key, json_real(exp_n[i]));
            if (exp_n[i] > 0) {   /* variants the policy never gives a chance carry no information */
                double d = (double)obs[i] - exp_n[i];
                chi2 += d * d / exp_n[i];
                df++;
            }
        }
    }
    free(obs);
    free(exp_n);
    if (df < 0) df = 0;
    p = df > 0 ? stats_chi2_sf(chi2, df) : 1.0;
    return json_pack("{s:o, s:o, s:f, s:i, s:f, s:b}", "observed", observed, "expected", expected, "chi_square", chi2,
                     "df", df, "p_value", p, "mismatch", p < SRM_ALPHA);
}
