/* offpolicy.c — IPS, SNIPS and doubly-robust estimates with normal-approximation intervals
 * (see offpolicy.h). Two passes over the rows — sums first, then squared deviations from the
 * means — instead of one pass of power sums: importance weights can reach 1/p = 100 and more,
 * and Σx² − n·x̄² would cancel away the digits that the interval is made of. */
#include "bandit/offpolicy.h"

#include <math.h>
#include <string.h>

#include "util/common.h"

#define Z95 1.959963984540054   /* two-sided 95% quantile of the standard normal */

void ope_reward_model(const double *sum, const double *count, int narms, double *model) {
    double all = 0, n = 0;
    for (int a = 0; a < narms; a++) {
        all += sum[a];
        n += count[a];
    }
    for (int a = 0; a < narms; a++) model[a] = count[a] > 0 ? sum[a] / count[a] : n > 0 ? all / n : 0.0;
}

double ope_direct(const double *targets, const double *model, int narms) {
    double v = 0;
    for (int a = 0; a < narms; a++) v += targets[a] * model[a];
    return v;
}

/* mean ± z·sd/√n, where ss is the sum of squared deviations of the n per-row terms. */
static void normal_interval(struct ope_estimate *e, double mean, double ss, size_t n) {
    double half = n >= 2 ? Z95 * sqrt(ss / (double)(n - 1) / (double)n) : 0;
    /* Weights of 1/p with p near 0 can overflow: then there is no estimate rather than ∞. */
    if (!isfinite(mean)) return;
    e->defined = 1;
    e->estimate = mean;
    if (n < 2 || !isfinite(half)) return;
    e->has_ci = 1;
    e->ci_low = mean - half;
    e->ci_high = mean + half;
}

static int row_valid(const struct ope_row *r, const double *model, int narms) {
    return r->arm >= 0 && r->arm < narms && r->propensity > 0 && r->propensity <= 1 && r->target >= 0 &&
           r->target <= 1 && isfinite(r->reward) && (!model || isfinite(r->direct));
}

int ope_evaluate(const struct ope_row *rows, size_t n, const double *model, int narms, struct ope_result *out) {
    double sr = 0, swr = 0, sw = 0, sww = 0, sdr = 0;
    double ss_r = 0, ss_ips = 0, ss_snips = 0, ss_dr = 0;
    memset(out, 0, sizeof *out);
    out->n = n;
    for (int a = 0; model && a < narms; a++)
        if (!isfinite(model[a])) return SCOUT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const struct ope_row *r = &rows[i];
        double w;
        if (!row_valid(r, model, narms)) return SCOUT_EINVAL;
        w = r->target / r->propensity;
        sr += r->reward;
        swr += w * r->reward;
        sw += w;
        sww += w * w;
        if (model) sdr += r->direct + w * (r->reward - model[r->arm]);
    }
    if (n == 0) return SCOUT_OK;
    double mean_r = sr / (double)n, ips = swr / (double)n, dr = sdr / (double)n;
    double snips = sw > 0 ? swr / sw : 0;
    for (size_t i = 0; i < n; i++) {
        const struct ope_row *r = &rows[i];
        double w = r->target / r->propensity, d;
        ss_r += (r->reward - mean_r) * (r->reward - mean_r);
        ss_ips += (w * r->reward - ips) * (w * r->reward - ips);
        /* Delta method for the ratio Σwr/Σw: the terms w·(r − SNIPS) have mean 0, and their
         * spread over the mean weight is the spread of the ratio. */
        ss_snips += (w * (r->reward - snips)) * (w * (r->reward - snips));
        if (model) {
            d = r->direct + w * (r->reward - model[r->arm]) - dr;
            ss_dr += d * d;
        }
    }
    normal_interval(&out->logged, mean_r, ss_r, n);
    normal_interval(&out->ips, ips, ss_ips, n);
    if (model) normal_interval(&out->dr, dr, ss_dr, n);
    if (sw > 0) {
        double mean_w = sw / (double)n;
        /* normal_interval divides by √n once; the ratio's sd also divides by the mean weight. */
        normal_interval(&out->snips, snips, ss_snips / (mean_w * mean_w), n);
    }
    out->ess = sww > 0 && isfinite(sww) ? (sw / sqrt(sww)) * (sw / sqrt(sww)) : 0;
    return SCOUT_OK;
}
