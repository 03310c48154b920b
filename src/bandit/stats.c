/* stats.c — the χ² survival function through the regularised upper incomplete gamma function
 * Q(a, x): its power series below x = a + 1, its continued fraction (modified Lentz) above,
 * each accurate to ~1e-14. */
#include "bandit/stats.h"

#include <float.h>
#include <math.h>

#define ITMAX 500
#define EPS 1e-15
#define TINY (DBL_MIN / EPS)

/* P(a, x) by its series: e^{−x} x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)). */
static double gamma_p_series(double a, double x) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < ITMAX; n++) {
        term *= x / (a + n);
        sum += term;
        if (fabs(term) < fabs(sum) * EPS) break;
    }
    return sum * exp(-x + a * log(x) - lgamma(a));
}

/* Q(a, x) by its continued fraction. */
static double gamma_q_fraction(double a, double x) {
    double b = x + 1.0 - a, c = 1.0 / TINY, d = 1.0 / b, h = d;
    for (int i = 1; i < ITMAX; i++) {
        double an = -i * (i - a), del;
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < TINY) d = TINY;
        c = b + an / c;
        if (fabs(c) < TINY) c = TINY;
        d = 1.0 / d;
        del = d * c;
        h *= del;
        if (fabs(del - 1.0) < EPS) break;
    }
    return exp(-x + a * log(x) - lgamma(a)) * h;
}

double stats_chi2_sf(double x, int df) {
    double a = df / 2.0, hx = x / 2.0;
    if (df < 1 || !(x > 0)) return 1.0;
    if (isinf(x)) return 0.0;
    return hx < a + 1.0 ? 1.0 - gamma_p_series(a, hx) : gamma_q_fraction(a, hx);
}
