/* registry.h — the live tests, by id.
 * Lookups take a read lock and hand back a counted reference, so the decision path never
 * waits for anything but other lookups; create and delete take the write lock briefly. */
#ifndef SCOUT_REGISTRY_H
#define SCOUT_REGISTRY_H

#include <stddef.h>
#include "experiment.h"

struct registry;

int registry_new(struct registry **out);
void registry_free(struct registry *r);   /* drops the registry's references */

/* Adds e (the registry takes its own reference). SCOUT_ECONFLICT, adding nothing, when a test
 * with its id is registered already (a shared store's reader can register a new test before
 * the request that created it does). */
int registry_add(struct registry *r, struct experiment *e);

/* Returns a new reference to the test with this id (caller unrefs), or NULL. */
struct experiment *registry_get(struct registry *r, const char *id);

/* Removes the test; returns SCOUT_ENOTFOUND when there is none. */
int registry_remove(struct registry *r, const char *id);

/* A snapshot of all tests ordered by creation time: *out is a malloc'd array of new
 * references; free with registry_release_list. */
int registry_list(struct registry *r, struct experiment ***out, size_t *n);
void registry_release_list(struct experiment **list, size_t n);

#endif
