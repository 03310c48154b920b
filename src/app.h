/* app.h — the server context: everything a handler may use, passed to it explicitly.
 * There is no other global mutable state. */
#ifndef SCOUT_APP_H
#define SCOUT_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "auth/ratelimit.h"
#include "auth/tokens.h"
#include "config.h"
#include "obs/logstream.h"
#include "obs/metrics.h"
#include "registry.h"
#include "settings.h"
#include "store/store.h"

struct app {
    struct config *cfg;
    struct store *store;
    struct registry *reg;
    struct settings settings;
    struct tokens *tokens;
    struct ratelimit *ratelimit;
    struct metrics *metrics;
    struct logstream *logstream;
    _Atomic bool protected_api;   /* API protection on; persisted as the "protection" setting */
    double started_at;
};

/* The store's snapshot handlers (struct store_snapshots): a test's learned state as bytes, and
 * a stored one put back (logged when it cannot be read). arg is the app. */
int app_take_state(void *arg, const char *test_id, unsigned char **state, size_t *len);
int app_restore_state(void *arg, const char *test_id, const unsigned char *state, size_t len);

/* Loads every test and replays every reward event from the store. */
int app_load(struct app *app);

/* Queues the test's SRM counters for the store when they changed and the last save is older
 * than a few seconds (force: whenever they changed). Called after decisions and at shutdown;
 * after a crash the counters resume from the last save, observed and expected together. */
void app_save_counters(struct app *app, struct experiment *e, int force);
void app_save_all_counters(struct app *app);

/* The store's change handler (store_change_fn): applies what another replica changed — a test
 * created or deleted, a rollout, a setting or the protection flag. Idempotent. */
void app_on_change(void *arg, const struct store_change_event *ev);

/* The store's event handler (store_event_fn): folds a durable reward event into its test's
 * learned state. arg is the app. */
void app_on_event(void *arg, const char *test_id, long variant_id, double reward, const char *context, double ts);

#endif
