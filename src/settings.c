/* settings.c — operator settings: validation, persistence as JSON documents in the store,
 * and the precedence rule (command line > stored > default). A setting is applied in memory
 * only after the store committed it, so what a client saw acknowledged survives restart. */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

#define KEY_MODEL "model_config"
#define KEY_SYSTEM "system_config"
#define KEY_REDIS "redis_config"

static json_t *load_doc(struct store *store, const char *key) {
    char *text = NULL;
    json_t *doc = NULL;
    if (store_get_setting(store, key, &text) == SCOUT_OK && text) doc = json_loads(text, 0, NULL);
    free(text);
    return json_is_object(doc) ? doc : (json_decref(doc), NULL);
}

static int save_doc(struct store *store, const char *key, json_t *doc) {
    char *text = json_dumps(doc, JSON_COMPACT);
    int rc = text ? store_put_setting(store, key, text) : SCOUT_ENOMEM;
    free(text);
    return rc;
}

static int get_int(const json_t *doc, const char *key, int dflt) {
    json_t *v = json_object_get(doc, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

int settings_load(struct settings *s, struct store *store, struct config *cfg) {
    json_t *m, *sys, *r;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    m = load_doc(store, KEY_MODEL);
    sys = load_doc(store, KEY_SYSTEM);
    r = load_doc(store, KEY_REDIS);
    atomic_init(&s->time_window_minutes, get_int(m, "time_window_minutes", 60));
    atomic_init(&s->bucket_granularity_seconds, get_int(m, "bucket_granularity_seconds", 60));
    atomic_init(&s->min_update_requests, get_int(m, "min_update_requests", 10));
    atomic_init(&s->context_ttl, cfg->context_ttl_set ? cfg->context_ttl : get_int(r, "ttl", cfg->context_ttl));

    /* Stored system_config applies at start-up when the command line did not say. */
    const char *h = json_string_value(json_object_get(sys, "host"));
    if (h && !cfg->host_set) {
        free(cfg->host);
        cfg->host = strdup(h);
    }
    if (json_is_integer(json_object_get(sys, "port")) && !cfg->port_set) cfg->port = get_int(sys, "port", cfg->port);
    snprintf(s->host, sizeof s->host, "%s", cfg->host);
    s->port = cfg->port;
    s->debug = json_is_true(json_object_get(sys, "debug"));

    h = json_string_value(json_object_get(r, "host"));
    snprintf(s->redis_host, sizeof s->redis_host, "%s", cfg->redis_host ? cfg->redis_host : h ? h : "localhost");
    s->redis_port = cfg->redis_host ? cfg->redis_port : get_int(r, "port", cfg->redis_port);
    json_decref(m);
    json_decref(sys);
    json_decref(r);
    return SCOUT_OK;
}

void settings_refresh(struct settings *s, struct store *store, const struct config *cfg) {
    json_t *m = load_doc(store, KEY_MODEL), *r = load_doc(store, KEY_REDIS);
    if (m) {
        atomic_store(&s->time_window_minutes, get_int(m, "time_window_minutes", atomic_load(&s->time_window_minutes)));
        atomic_store(&s->bucket_granularity_seconds,
                     get_int(m, "bucket_granularity_seconds", atomic_load(&s->bucket_granularity_seconds)));
        atomic_store(&s->min_update_requests, get_int(m, "min_update_requests", atomic_load(&s->min_update_requests)));
    }
    if (r && !cfg->context_ttl_set) atomic_store(&s->context_ttl, get_int(r, "ttl", atomic_load(&s->context_ttl)));
    json_decref(m);
    json_decref(r);
}

bool settings_protection(struct store *store) {
    json_t *doc = load_doc(store, "protection");
    bool on = json_is_true(json_object_get(doc, "protected_api"));
    json_decref(doc);
    return on;
}

void settings_free(struct settings *s) {
    pthread_mutex_destroy(&s->lock);
}

json_t *settings_model_config(struct settings *s) {
    return json_pack("{s:i, s:i, s:i}", "time_window_minutes", atomic_load(&s->time_window_minutes),
                     "bucket_granularity_seconds", atomic_load(&s->bucket_granularity_seconds),
                     "min_update_requests", atomic_load(&s->min_update_requests));
}

json_t *settings_system_config(struct settings *s) {
    json_t *doc;
    pthread_mutex_lock(&s->lock);
    doc = json_pack("{s:s, s:i, s:b}", "host", s->host, "port", s->port, "debug", s->debug);
    pthread_mutex_unlock(&s->lock);
    return doc;
}

json_t *settings_redis_config(struct settings *s) {
    json_t *doc;
    pthread_mutex_lock(&s->lock);
    doc = json_pack("{s:s, s:i, s:i}", "host", s->redis_host, "port", s->redis_port, "ttl",
                    atomic_load(&s->context_ttl));
    pthread_mutex_unlock(&s->lock);
    return doc;
}

/* Reads an optional integer field within [lo, hi]; 1 when absent or valid. */
static int opt_int(const json_t *body, const char *key, long lo, long hi, int *out, int *status, char *err,
                   size_t errlen) {
    json_t *v = json_object_get(body, key);
    if (!v) return 1;
    if (!json_is_integer(v)) {
        *status = 422;
        snprintf(err, errlen, "field '%s' must be an integer", key);
        return 0;
    }
    if (json_integer_value(v) < lo || json_integer_value(v) > hi) {
        *status = 400;
        snprintf(err, errlen, "field '%s' must be between %ld and %ld", key, lo, hi);
        return 0;
    }
    *out = (int)json_integer_value(v);
    return 1;
}

/* Reads an optional "host" string field into buf; 1 when absent or valid. */
static int opt_host(const json_t *body, char *buf, size_t len, int *status, char *err, size_t errlen) {
    json_t *host = json_object_get(body, "host");
    if (!host) return 1;
    if (!json_is_string(host)) {
        *status = 422;
        snprintf(err, errlen, "field 'host' must be a string");
        return 0;
    }
    if (json_string_length(host) == 0 || json_string_length(host) >= len) {
        *status = 400;
        snprintf(err, errlen, "field 'host' must be 1 to %zu characters long", len - 1);
        return 0;
    }
    snprintf(buf, len, "%s", json_string_value(host));
    return 1;
}

static int need_object(const json_t *body, int *status, char *err, size_t errlen) {
    if (json_is_object(body)) return 1;
    *status = 422;
    snprintf(err, errlen, "body must be a JSON object");
    return 0;
}

int settings_update_model_config(struct settings *s, struct store *store, const json_t *body, int *status,
                                 char *err, size_t errlen) {
    int window = atomic_load(&s->time_window_minutes), gran = atomic_load(&s->bucket_granularity_seconds);
    int minu = atomic_load(&s->min_update_requests), rc;
    json_t *doc;
    if (!need_object(body, status, err, errlen) ||
        !opt_int(body, "time_window_minutes", 1, 10080, &window, status, err, errlen) ||
        !opt_int(body, "bucket_granularity_seconds", 1, 86400, &gran, status, err, errlen) ||
        !opt_int(body, "min_update_requests", 0, 1000000000, &minu, status, err, errlen))
        return SCOUT_EINVAL;
    if ((long)window * 60 / gran > 10080) {
        *status = 400;
        snprintf(err, errlen, "the window holds more than 10080 buckets; raise bucket_granularity_seconds");
        return SCOUT_EINVAL;
    }
    doc = json_pack("{s:i, s:i, s:i}", "time_window_minutes", window, "bucket_granularity_seconds", gran,
                    "min_update_requests", minu);
    rc = save_doc(store, KEY_MODEL, doc);
    json_decref(doc);
    if (rc != SCOUT_OK) return rc;
    atomic_store(&s->time_window_minutes, window);
    atomic_store(&s->bucket_granularity_seconds, gran);
    atomic_store(&s->min_update_requests, minu);
    return SCOUT_OK;
}

int settings_update_system_config(struct settings *s, struct store *store, const json_t *body, int *status,
                                  char *err, size_t errlen) {
    json_t *debug, *doc;
    int port, rc;
    bool dbg;
    char hbuf[256];
    if (!need_object(body, status, err, errlen)) return SCOUT_EINVAL;
    pthread_mutex_lock(&s->lock);
    port = s->port;
    dbg = s->debug;
    snprintf(hbuf, sizeof hbuf, "%s", s->host);
    pthread_mutex_unlock(&s->lock);
    if (!opt_int(body, "port", 1, 65535, &port, status, err, errlen)) return SCOUT_EINVAL;
    if (!opt_host(body, hbuf, sizeof hbuf, status, err, errlen)) return SCOUT_EINVAL;
    if ((debug = json_object_get(body, "debug"))) {
        if (!json_is_boolean(debug)) {
            *status = 422;
            snprintf(err, errlen, "field 'debug' must be a boolean");
            return SCOUT_EINVAL;
        }
        dbg = json_is_true(debug);
    }
    doc = json_pack("{s:s, s:i, s:b}", "host", hbuf, "port", port, "debug", dbg);
    rc = save_doc(store, KEY_SYSTEM, doc);
    json_decref(doc);
    if (rc != SCOUT_OK) return rc;
    pthread_mutex_lock(&s->lock);
    snprintf(s->host, sizeof s->host, "%s", hbuf);
    s->port = port;
    s->debug = dbg;
    pthread_mutex_unlock(&s->lock);
    return SCOUT_OK;
}

int settings_update_redis_config(struct settings *s, struct store *store, const json_t *body, int *status,
                                 char *err, size_t errlen) {
    json_t *doc;
    int port, ttl = atomic_load(&s->context_ttl), rc;
    char hbuf[256];
    if (!need_object(body, status, err, errlen)) return SCOUT_EINVAL;
    pthread_mutex_lock(&s->lock);
    port = s->redis_port;
    snprintf(hbuf, sizeof hbuf, "%s", s->redis_host);
    pthread_mutex_unlock(&s->lock);
    if (!opt_int(body, "port", 1, 65535, &port, status, err, errlen) ||
        !opt_int(body, "ttl", 1, 365 * 86400, &ttl, status, err, errlen))
        return SCOUT_EINVAL;
    if (!opt_host(body, hbuf, sizeof hbuf, status, err, errlen)) return SCOUT_EINVAL;
    doc = json_pack("{s:s, s:i, s:i}", "host", hbuf, "port", port, "ttl", ttl);
    rc = save_doc(store, KEY_REDIS, doc);
    json_decref(doc);
    if (rc != SCOUT_OK) return rc;
    pthread_mutex_lock(&s->lock);
    snprintf(s->redis_host, sizeof s->redis_host, "%s", hbuf);
    s->redis_port = port;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->context_ttl, ttl);
    return SCOUT_OK;
}
