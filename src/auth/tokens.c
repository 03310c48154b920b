/* tokens.c — the token table in memory, mirrored in the store.
 * Reads (every protected request) take a read lock and compare the presented token's hash
 * with every entry in constant time; writes (create, revoke, rotate) commit to the store
 * first and then update memory. The table is reloaded from the store when its version
 * changed, checked at most every TOKENS_RELOAD_SECONDS, so the operator CLI works on a
 * running server. last_used is kept in memory and written back at most once a minute. */
#include "auth/tokens.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "obs/log.h"
#include "util/util.h"

#define TOKENS_RELOAD_SECONDS 1.0
#define TOUCH_PERSIST_SECONDS 60.0

struct entry {
    struct store_token tk;
    double persisted_use;     /* last_used as last written to the store */
};

struct tokens {
    struct store *store;
    pthread_rwlock_t lock;
    struct entry *v;          /* TOKENS_MAX entries; n used */
    size_t n;
    int have_bootstrap;
    struct store_token bootstrap;
    int default_ttl_hours;
    long version;             /* the store's tokens_version when last loaded */
    _Atomic int64_t next_check_ms;
};

static void hash_secret(const char *secret, unsigned char out[32]) {
    crypto_generichash(out, 32, (const unsigned char *)secret, strlen(secret), NULL, 0);
}

/* The fingerprint derives from the stored hash (so listings can show it) through a keyed
 * hash (so it is not a prefix of what is stored). 32 bits: enough to tell tokens apart. */
static void fingerprint_of_hash(const unsigned char hash[32], char out[9]) {
    static const unsigned char key[32] = "scout-token-fingerprint-v1";
    unsigned char h[16];
    crypto_generichash(h, sizeof h, hash, 32, key, sizeof key);
    sodium_bin2hex(out, 9, h, 4);
}

void tokens_fingerprint(const char *secret, char out[9]) {
    unsigned char h[32];
    hash_secret(secret, h);
    fingerprint_of_hash(h, out);
}

const char *tokens_scope_name(enum token_scope scope) {
    return scope == SCOPE_ADMIN ? "admin" : "client";
}

int tokens_parse_scope(const char *name, enum token_scope *out) {
    if (!strcmp(name, "admin")) *out = SCOPE_ADMIN;
    else if (!strcmp(name, "client")) *out = SCOPE_CLIENT;
    else return 0;
    return 1;
}

/* A table being loaded from the store. */
struct loading {
    struct entry *v;
    size_t n;
};

static int load_one(void *ud, const struct store_token *tk) {
    struct loading *l = ud;
    if (l->n >= TOKENS_MAX) return 1;
    l->v[l->n].tk = *tk;
    l->v[l->n].persisted_use = tk->last_used;
    l->n++;
    return 0;
}

/* Reloads the table when another process changed it. */
static void maybe_reload(struct tokens *t, double now) {
    int64_t due = atomic_load(&t->next_check_ms), now_ms = (int64_t)(now * 1000.0);
    long version;
    if (now_ms < due || !atomic_compare_exchange_strong(&t->next_check_ms, &due,
                                                        now_ms + (int64_t)(TOKENS_RELOAD_SECONDS * 1000)))
        return;
    if (store_tokens_version(t->store, &version) != SCOUT_OK || version == t->version) return;
    /* Load aside and swap only a complete table: a failed read keeps the tokens we had. */
    struct loading l = {calloc(TOKENS_MAX, sizeof *l.v), 0};
    if (!l.v) return;
    if (store_load_tokens(t->store, load_one, &l) == SCOUT_OK) {
        pthread_rwlock_wrlock(&t->lock);
        struct entry *old = t->v;
        t->v = l.v;
        t->n = l.n;
        t->version = version;
        pthread_rwlock_unlock(&t->lock);
        l.v = old;
    }
    free(l.v);
}

int tokens_open(struct tokens **out, struct store *store, const char *bootstrap, int default_ttl_hours) {
    struct tokens *t = calloc(1, sizeof *t);
    if (!t || !(t->v = calloc(TOKENS_MAX, sizeof *t->v))) {
        free(t);
        return SCOUT_ENOMEM;
    }
    pthread_rwlock_init(&t->lock, NULL);
    t->store = store;
    t->default_ttl_hours = default_ttl_hours;
    t->version = -1;
    if (bootstrap) {
        t->have_bootstrap = 1;
        snprintf(t->bootstrap.id, sizeof t->bootstrap.id, "bootstrap");
        snprintf(t->bootstrap.name, sizeof t->bootstrap.name, "bootstrap (environment)");
        t->bootstrap.scope = SCOPE_ADMIN;
        t->bootstrap.created = util_now();
        hash_secret(bootstrap, t->bootstrap.hash);
    }
    maybe_reload(t, util_now());
    *out = t;
    return SCOUT_OK;
}

void tokens_close(struct tokens *t) {
    if (!t) return;
    pthread_rwlock_destroy(&t->lock);
    sodium_memzero(&t->bootstrap, sizeof t->bootstrap);
    free(t->v);
    free(t);
}

static enum token_check entry_state(const struct store_token *tk, double now) {
    if (tk->revoked > 0) return TOKEN_REVOKED;
    if (tk->expires > 0 && now >= tk->expires) return tk->rotated > 0 ? TOKEN_REVOKED : TOKEN_EXPIRED;
    return TOKEN_OK;
}

enum token_check tokens_verify(struct tokens *t, const char *secret, double now, enum token_scope *scope, char *id) {
    unsigned char h[32];
    struct entry *match = NULL;
    enum token_check rc = TOKEN_UNKNOWN;
    int persist = 0;
    char touch_id[17];
    maybe_reload(t, now);
    hash_secret(secret, h);
    pthread_rwlock_rdlock(&t->lock);
    /* Compare with every entry, all of it: no early exit reveals where a match was. */
    int boot = t->have_bootstrap && sodium_memcmp(h, t->bootstrap.hash, 32) == 0;
    for (size_t i = 0; i < t->n; i++)
        if (sodium_memcmp(h, t->v[i].tk.hash, 32) == 0) match = &t->v[i];
    if (boot) {
        rc = TOKEN_OK;
        *scope = SCOPE_ADMIN;
        snprintf(id, TOKEN_ID_LEN + 1, "%s", t->bootstrap.id);
    } else if (match) {
        rc = entry_state(&match->tk, now);
        if (rc == TOKEN_OK) {
            *scope = (enum token_scope)match->tk.scope;
            snprintf(id, TOKEN_ID_LEN + 1, "%s", match->tk.id);
            /* Benign race: two readers may both store now; the value is the same. */
            match->tk.last_used = now;
            if (now - match->persisted_use >= TOUCH_PERSIST_SECONDS) {
                match->persisted_use = now;
                persist = 1;
                snprintf(touch_id, sizeof touch_id, "%s", match->tk.id);
            }
        }
    }
    pthread_rwlock_unlock(&t->lock);
    if (persist) store_touch_token(t->store, touch_id, now);
    sodium_memzero(h, sizeof h);
    return rc;
}

static json_t *describe(const struct store_token *tk, double now) {
    const char *state = "active";
    char fp[9];
    if (tk->revoked > 0) state = "revoked";
    else if (tk->rotated > 0) state = "rotated";
    else if (entry_state(tk, now) == TOKEN_EXPIRED) state = "expired";
    fingerprint_of_hash(tk->hash, fp);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o}", "id", tk->id, "name", tk->name, "scope",
                     tokens_scope_name((enum token_scope)tk->scope), "created_at", util_json_time(tk->created),
                     "expires_at", util_json_time(tk->expires), "last_used_at", util_json_time(tk->last_used),
                     "state", state, "fingerprint", fp, "revoked_at", util_json_time(tk->revoked), "rotated_at",
                     util_json_time(tk->rotated));
}

/* Makes a new token entry and its secret ("sct_" + 43 base64url characters). */
static void mint(struct store_token *tk, char *secret, size_t len, const char *name, enum token_scope scope,
                 double expires, double now) {
    unsigned char raw[32], idb[8];
    randombytes_buf(raw, sizeof raw);
    randombytes_buf(idb, sizeof idb);
    memcpy(secret, "sct_", 4);
    sodium_bin2base64(secret + 4, len - 4, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    memset(tk, 0, sizeof *tk);
    sodium_bin2hex(tk->id, sizeof tk->id, idb, sizeof idb);
    snprintf(tk->name, sizeof tk->name, "%s", name);
    tk->scope = scope;
    tk->created = now;
    tk->expires = expires;
    hash_secret(secret, tk->hash);
}

/* At capacity, forgets tokens that can never work again (revoked, expired, rotated past
 * their grace), in the store and in memory, so that the table holds live tokens. Lock held. */
static void prune_dead_locked(struct tokens *t, double now) {
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (entry_state(&t->v[i].tk, now) != TOKEN_OK && store_delete_token(t->store, t->v[i].tk.id) == SCOUT_OK)
            continue;
        t->v[w++] = t->v[i];
    }
    t->n = w;
}

/* Whether one more token fits (pruning dead ones if need be). Lock held. */
static int have_room_locked(struct tokens *t, double now) {
    if (t->n >= TOKENS_MAX) prune_dead_locked(t, now);
    return t->n < TOKENS_MAX;
}

/* Commits tk and adds it to memory, then builds the one answer that carries the secret. */
static int add_token(struct tokens *t, const struct store_token *tk, const char *secret, json_t **out) {
    int rc;
    pthread_rwlock_wrlock(&t->lock);
    if (!have_room_locked(t, tk->created)) {
        pthread_rwlock_unlock(&t->lock);
        return SCOUT_EINVAL;
    }
    rc = store_put_token(t->store, tk);
    if (rc == SCOUT_OK) {
        t->v[t->n].tk = *tk;
        t->v[t->n].persisted_use = 0;
        t->n++;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc != SCOUT_OK) return rc;
    *out = describe(tk, tk->created);
    json_object_set_new(*out, "token", json_string(secret));
    json_object_set_new(*out, "auth_token", json_string(secret));
    return SCOUT_OK;
}

int tokens_create(struct tokens *t, const char *name, enum token_scope scope, double ttl_seconds, double now,
                  json_t **out) {
    struct store_token tk;
    char secret[64];
    int rc;
    if (ttl_seconds < 0) ttl_seconds = t->default_ttl_hours * 3600.0;
    mint(&tk, secret, sizeof secret, name, scope, ttl_seconds > 0 ? now + ttl_seconds : 0, now);
    rc = add_token(t, &tk, secret, out);
    sodium_memzero(secret, sizeof secret);
    return rc;
}

static struct entry *find_locked(struct tokens *t, const char *id) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].tk.id, id)) return &t->v[i];
    return NULL;
}

static int find_id(struct tokens *t, const char *id) {
    pthread_rwlock_rdlock(&t->lock);
    int found = find_locked(t, id) != NULL;
    pthread_rwlock_unlock(&t->lock);
    return found;
}

/* Applies change to the entry with this id, committing the changed row first. */
static int update_token(struct tokens *t, const char *id, void (*change)(struct store_token *, double, double),
                        double arg, double now, struct store_token *before) {
    struct entry *e;
    struct store_token tk;
    int rc;
    maybe_reload(t, now);
    pthread_rwlock_wrlock(&t->lock);
    if (!(e = find_locked(t, id))) {
        pthread_rwlock_unlock(&t->lock);
        return SCOUT_ENOTFOUND;
    }
    tk = e->tk;
    if (before) *before = tk;
    change(&tk, arg, now);
    rc = store_put_token(t->store, &tk);
    if (rc == SCOUT_OK) e->tk = tk;
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static void set_revoked(struct store_token *tk, double arg, double now) {
    (void)arg;
    if (tk->revoked == 0) tk->revoked = now;
}

static void set_rotated(struct store_token *tk, double grace, double now) {
    double until = now + grace;
    tk->rotated = now;
    if (tk->expires == 0 || tk->expires > until) tk->expires = until;
}

int tokens_revoke(struct tokens *t, const char *id, double now) {
    return update_token(t, id, set_revoked, 0, now, NULL);
}

/* Only a live token that was not rotated yet can be rotated: rotating a revoked or expired
 * token would resurrect its access, rotating twice would fork it. */
int tokens_rotate(struct tokens *t, const char *id, double grace, double now, json_t **out) {
    struct store_token old, tk;
    char secret[64];
    double ttl;
    int rc, room;
    /* Refuse before touching the old token: a rotation without a successor would only kill it. */
    pthread_rwlock_wrlock(&t->lock);
    room = have_room_locked(t, now);
    pthread_rwlock_unlock(&t->lock);
    if (!room) return find_id(t, id) ? SCOUT_EINVAL : SCOUT_ENOTFOUND;
    pthread_rwlock_rdlock(&t->lock);
    struct entry *e = find_locked(t, id);
    int rotatable = e && entry_state(&e->tk, now) == TOKEN_OK && e->tk.rotated == 0;
    pthread_rwlock_unlock(&t->lock);
    if (!e) return SCOUT_ENOTFOUND;
    if (!rotatable) return SCOUT_ECONFLICT;
    rc = update_token(t, id, set_rotated, grace, now, &old);
    if (rc != SCOUT_OK) return rc;
    grace = old.expires > 0 && old.expires - now < grace ? old.expires - now : grace;
    /* The successor lives as long as its predecessor was meant to (or the default). */
    ttl = old.expires > 0 ? old.expires - old.created : 0;
    if (old.expires > 0 && ttl <= 0) ttl = t->default_ttl_hours * 3600.0;
    mint(&tk, secret, sizeof secret, old.name, (enum token_scope)old.scope, ttl > 0 ? now + ttl : 0, now);
    rc = add_token(t, &tk, secret, out);
    sodium_memzero(secret, sizeof secret);
    if (rc == SCOUT_OK) {
        json_object_set_new(*out, "replaces", json_string(id));
        json_object_set_new(*out, "old_valid_for_seconds", json_real(grace > 0 ? grace : 0));
    }
    return rc;
}

json_t *tokens_list(struct tokens *t, double now) {
    json_t *out = json_array();
    maybe_reload(t, now);
    pthread_rwlock_rdlock(&t->lock);
    if (t->have_bootstrap) json_array_append_new(out, describe(&t->bootstrap, now));
    for (size_t i = 0; i < t->n; i++) json_array_append_new(out, describe(&t->v[i].tk, now));
    pthread_rwlock_unlock(&t->lock);
    return out;
}

int tokens_have_admin(struct tokens *t, double now) {
    int found;
    maybe_reload(t, now);
    pthread_rwlock_rdlock(&t->lock);
    found = t->have_bootstrap;
    for (size_t i = 0; i < t->n && !found; i++)
        found = t->v[i].tk.scope == SCOPE_ADMIN && entry_state(&t->v[i].tk, now) == TOKEN_OK;
    pthread_rwlock_unlock(&t->lock);
    return found;
}
