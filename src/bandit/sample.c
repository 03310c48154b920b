/* sample.c — normal, gamma, beta and Student t samplers.
 *
 * Decision: gamma variates are produced in log space (log of the
 * Marsaglia–Tsang result, plus log(U)/a for the shape < 1 boost). Beta and t
 * are then ratios of exponentials of differences, so tiny shapes cannot
 * underflow to 0/0 and huge shapes cannot overflow to inf/inf.
 */
#include "sample.h"

#include <math.h>

static int valid_param(double x) { return x > 0.0 && isfinite(x); }

double sample_normal(rng_t *r)
{
    /* Marsaglia polar: no trig; the second deviate is discarded to stay
     * stateless and thread-safe. */
    double u, v, s;
    do {
        u = 2.0 * rng_uniform(r) - 1.0;
        v = 2.0 * rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

/* log of a Gamma(a,1) variate, a >= 1 and finite (Marsaglia–Tsang 2000). */
static double log_gamma_mt(rng_t *r, double a)
{
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = sample_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = rng_uniform_pos(r), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return log(d) + log(v);
        /* d*(1 - v + log v) rather than d - d*v + d*log v: no inf - inf
         * for huge d, and no cancellation when v is close to 1. */
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return log(d) + log(v);
    }
}

static double log_gamma_variate(rng_t *r, double a)
{
    if (a >= 1.0)
        return log_gamma_mt(r, a);
    /* Boost: G(a) = G(a+1) * U^(1/a), kept as a sum of logs. */
    return log_gamma_mt(r, a + 1.0) + log(rng_uniform_pos(r)) / a;
}

double sample_gamma(rng_t *r, double shape)
{
    return exp(log_gamma_variate(r, valid_param(shape) ? shape : 1.0));
}

double sample_beta(rng_t *r, double a, double b)
{
    double lx = log_gamma_variate(r, valid_param(a) ? a : 1.0);
    double ly = log_gamma_variate(r, valid_param(b) ? b : 1.0);
    /* X/(X+Y) = 1/(1 + exp(ly - lx)); exp overflow gives exactly 0. */
    double p = 1.0 / (1.0 + exp(ly - lx));
    if (!(p >= 0.0))
        return 0.5; /* unreachable with finite logs; guarantees no NaN */
    return p > 1.0 ? 1.0 : p;
}

double sample_student_t(rng_t *r, double dof)
{
    if (isinf(dof) && dof > 0)
        return sample_normal(r);
    if (!valid_param(dof))
        dof = 1.0;
    /* t = Z / sqrt(V/dof) with V = 2*Gamma(dof/2); the scale is formed in
     * log space so a near-zero gamma draw gives a large t, not inf*0. */
    double z = sample_normal(r);
    double scale = exp(0.5 * (log(0.5 * dof) - log_gamma_variate(r, 0.5 * dof)));
    return z == 0.0 ? 0.0 : z * scale;
}
