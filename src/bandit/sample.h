/* sample.h — random variates for Thompson sampling (Beta for conversion
 * rates, Student t for continuous metrics).
 *
 * Design: samplers never fail. Posterior parameters come from live counters,
 * so a bad value (<= 0, NaN, infinite) is replaced by a documented default
 * instead of returning NaN or looping; results are always finite or clamped.
 */
#ifndef SCOUT_BANDIT_SAMPLE_H
#define SCOUT_BANDIT_SAMPLE_H

#include "rng.h"

/* Standard normal N(0,1). Stateless: no cached second deviate anywhere. */
double sample_normal(rng_t *r);

/* Gamma(shape, scale 1), shape in (0, inf). An invalid shape (<= 0, NaN,
 * infinite) is treated as 1 (unit exponential). Very small shapes may
 * legitimately return 0 (true value below DBL_MIN) and shapes near DBL_MAX
 * +inf; never negative or NaN. */
double sample_gamma(rng_t *r, double shape);

/* Beta(a, b), a and b in (0, inf); accurate for large parameters (1e6+).
 * An invalid a or b is treated as 1.0 (the uniform prior). Always in [0,1],
 * never NaN. */
double sample_beta(rng_t *r, double a, double b);

/* Student t with dof in (0, inf]; +inf gives the normal limit. An invalid
 * dof (<= 0, NaN) is treated as 1 (Cauchy). Never NaN. */
double sample_student_t(rng_t *r, double dof);

#endif
