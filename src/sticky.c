/* sticky.c — the per-test table of sticky assignments (see sticky.h): linear probing over a
 * power-of-two array kept at most half full, FNV-1a hashes. Entries are never removed (a
 * test's assignments live as long as the test). */
#include "sticky.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

static uint64_t hash_key(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct sticky_entry *find_slot(struct sticky_entry *slots, size_t cap, const char *key) {
    size_t i = (size_t)hash_key(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0) i = (i + 1) & (cap - 1);
    return &slots[i];
}

const struct sticky_entry *sticky_get(const struct sticky_map *m, const char *key) {
    const struct sticky_entry *e;
    if (!m->cap) return NULL;
    e = find_slot(m->slots, m->cap, key);
    return e->key ? e : NULL;
}

static int grow(struct sticky_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct sticky_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return SCOUT_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return SCOUT_OK;
}

int sticky_put(struct sticky_map *m, const char *key, int arm, double propensity) {
    struct sticky_entry *e;
    if (m->cap) {
        e = find_slot(m->slots, m->cap, key);
        if (e->key) {
            e->arm = arm;
            e->propensity = propensity;
            return SCOUT_OK;
        }
    }
    if (m->n >= STICKY_MAX_USERS) return SCOUT_ECONFLICT;
    if ((m->n + 1) * 2 > m->cap && grow(m) != SCOUT_OK) return SCOUT_ENOMEM;
    e = find_slot(m->slots, m->cap, key);
    if (!(e->key = strdup(key))) return SCOUT_ENOMEM;
    e->arm = arm;
    e->propensity = propensity;
    m->n++;
    return SCOUT_OK;
}

void sticky_free(struct sticky_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
