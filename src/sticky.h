/* sticky.h — sticky assignments of one test: which variant each user got first, and with what
 * probability, so a user keeps it while the weights move. An open-addressing hash table of
 * user keys; at most STICKY_MAX_USERS per test (beyond that new users are simply not sticky,
 * and sticky_put says so). Not thread-safe: the owner (experiment.c) locks. */
#ifndef SCOUT_STICKY_H
#define SCOUT_STICKY_H

#include <stddef.h>

#define STICKY_MAX_USERS 1000000

struct sticky_entry {
    char *key;            /* owned; NULL: empty slot */
    int arm;
    double propensity;
};

struct sticky_map {
    struct sticky_entry *slots;
    size_t cap, n;        /* cap is a power of two (or 0) */
};

/* The entry of user key, or NULL. */
const struct sticky_entry *sticky_get(const struct sticky_map *m, const char *key);

/* Records key → (arm, propensity) (replacing an existing entry). SCOUT_OK, SCOUT_ENOMEM, or
 * SCOUT_ECONFLICT when the map is full. */
int sticky_put(struct sticky_map *m, const char *key, int arm, double propensity);

void sticky_free(struct sticky_map *m);

#endif
