/* stats.h — distribution functions the statistics for people need (not random variates: those
 * are in sample.h). */
#ifndef SCOUT_STATS_H
#define SCOUT_STATS_H

/* P(X ≥ x) for X ~ χ² with df degrees of freedom (df ≥ 1; x ≤ 0 gives 1). */
double stats_chi2_sf(double x, int df);

#endif
