/* registry.c — an open-hashing table of tests keyed by id under a reader-writer lock.
 * Tests number in the thousands at most, so a chained table that doubles at load 1 keeps
 * lookups O(1) without anything cleverer. */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct experiment *e;
    struct entry *next;
};

struct registry {
    pthread_rwlock_t lock;
    struct entry **buckets;
    size_t nbuckets, count;
};

static size_t hash_id(const char *s) {
    size_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int registry_new(struct registry **out) {
    struct registry *r = calloc(1, sizeof *r);
    if (!r) return SCOUT_ENOMEM;
    r->nbuckets = 64;
    r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
    if (!r->buckets) {
        free(r);
        return SCOUT_ENOMEM;
    }
    pthread_rwlock_init(&r->lock, NULL);
    *out = r;
    return SCOUT_OK;
}

void registry_free(struct registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct entry *en = r->buckets[i], *next;
        for (; en; en = next) {
            next = en->next;
            experiment_unref(en->e);
            free(en);
        }
    }
    free(r->buckets);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

static void grow_locked(struct registry *r) {
    size_t n = r->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return;   /* keep the old table: slower, still correct */
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct entry *en = r->buckets[i], *next;
        for (; en; en = next) {
            size_t h = hash_id(en->e->id) % n;
            next = en->next;
            en->next = b[h];
            b[h] = en;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
}

int registry_add(struct registry *r, struct experiment *e) {
    struct entry *en = malloc(sizeof *en);
    if (!en) return SCOUT_ENOMEM;
    pthread_rwlock_wrlock(&r->lock);
    for (struct entry *x = r->buckets[hash_id(e->id) % r->nbuckets]; x; x = x->next)
        if (!strcmp(x->e->id, e->id)) {   /* a replica's reader may have registered it first */
            pthread_rwlock_unlock(&r->lock);
            free(en);
            return SCOUT_ECONFLICT;
        }
    experiment_ref(e);
    en->e = e;
    if (r->count >= r->nbuckets) grow_locked(r);
    size_t h = hash_id(e->id) % r->nbuckets;
    en->next = r->buckets[h];
    r->buckets[h] = en;
    r->count++;
    pthread_rwlock_unlock(&r->lock);
    return SCOUT_OK;
}

struct experiment *registry_get(struct registry *r, const char *id) {
    struct experiment *found = NULL;
    pthread_rwlock_rdlock(&r->lock);
    for (struct entry *en = r->buckets[hash_id(id) % r->nbuckets]; en; en = en->next) {
        if (!strcmp(en->e->id, id)) {
            found = en->e;
            experiment_ref(found);
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return found;
}

int registry_remove(struct registry *r, const char *id) {
    struct experiment *gone = NULL;
    pthread_rwlock_wrlock(&r->lock);
    for (struct entry **pp = &r->buckets[hash_id(id) % r->nbuckets]; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->e->id, id)) {
            struct entry *en = *pp;
            *pp = en->next;
            gone = en->e;
            free(en);
            r->count--;
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    if (!gone) return SCOUT_ENOTFOUND;
    experiment_unref(gone);
    return SCOUT_OK;
}

static int cmp_created(const void *a, const void *b) {
    const struct experiment *x = *(struct experiment *const *)a, *y = *(struct experiment *const *)b;
    if (x->created_at != y->created_at) return (x->created_at > y->created_at) - (x->created_at < y->created_at);
    return strcmp(x->id, y->id);
}

int registry_list(struct registry *r, struct experiment ***out, size_t *n) {
    struct experiment **list;
    size_t k = 0;
    pthread_rwlock_rdlock(&r->lock);
    list = malloc(sizeof *list * (r->count ? r->count : 1));
    if (!list) {
        pthread_rwlock_unlock(&r->lock);
        return SCOUT_ENOMEM;
    }
    for (size_t i = 0; i < r->nbuckets; i++)
        for (struct entry *en = r->buckets[i]; en; en = en->next) {
            experiment_ref(en->e);
            list[k++] = en->e;
        }
    pthread_rwlock_unlock(&r->lock);
    qsort(list, k, sizeof *list, cmp_created);
    *out = list;
    *n = k;
    return SCOUT_OK;
}

void registry_release_list(struct experiment **list, size_t n) {
    for (size_t i = 0; i < n; i++) experiment_unref(list[i]);
    free(list);
}
