/* settings.h — the operator's settings changed through /admin/...: analytics window, warm-up
 * length, decision TTL, and the system/redis configuration the original exposed.
 * They persist in the store (the root filesystem may be read-only) and load at start-up.
 * Values read on the decision path are atomics; the rest sit behind a mutex. */
#ifndef SCOUT_SETTINGS_H
#define SCOUT_SETTINGS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <jansson.h>

#include "config.h"
#include "store/store.h"

struct settings {
    _Atomic int min_update_requests;      /* warm-up length of tests without their own */
    _Atomic int context_ttl;              /* seconds a decision waits for its reward */
    _Atomic int time_window_minutes;      /* analytics window of model_details */
    _Atomic int bucket_granularity_seconds;
    pthread_mutex_t lock;                 /* guards the strings below */
    char host[256];                       /* system_config as stored (applies at restart) */
    int port;
    bool debug;
    char redis_host[256];                 /* redis_config as stored */
    int redis_port;
};

/* Loads stored settings over the defaults and the command line (flags and environment win
 * over stored values, which win over defaults). */
int settings_load(struct settings *s, struct store *store, struct config *cfg);
void settings_free(struct settings *s);

/* The stored API protection state (false when never set). */
bool settings_protection(struct store *store);

/* Reads the model and Redis settings again (another replica saved them). System settings
 * (listen address) apply only at start-up. */
void settings_refresh(struct settings *s, struct store *store, const struct config *cfg);

json_t *settings_model_config(struct settings *s);
json_t *settings_system_config(struct settings *s);
json_t *settings_redis_config(struct settings *s);

/* Validate a client's partial update, persist it, then apply it. On a bad value returns
 * SCOUT_EINVAL with *status (400/422) and a sentence in err. */
int settings_update_model_config(struct settings *s, struct store *store, const json_t *body,
                                 int *status, char *err, size_t errlen);
int settings_update_system_config(struct settings *s, struct store *store, const json_t *body,
                                  int *status, char *err, size_t errlen);
int settings_update_redis_config(struct settings *s, struct store *store, const json_t *body,
                                 int *status, char *err, size_t errlen);

#endif
