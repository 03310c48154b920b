/* test_tokens.c — unit tests for API tokens (auth/tokens.c) on a real store.
 *
 * Every test gets a fresh data directory under /tmp (mkdtemp), a started store in it, and
 * removes it afterwards. Every time is injected through the `now` parameters; nothing sleeps.
 * What must hold:
 *   - a secret is "sct_" + 43 base64url characters, returned once under "token" and
 *     "auth_token"; it verifies with its scope and id, and nothing else does;
 *   - expiry is exact (OK just before created + ttl, EXPIRED at it); ttl 0 never expires and
 *     ttl < 0 takes the default lifetime;
 *   - revocation is immediate; rotation keeps the old token for the grace period only and
 *     issues a successor with the same name and scope;
 *   - the bootstrap token is admin, never expires and is never written to the store;
 *   - listings and the store never hold a secret: the store keeps a 32-byte BLAKE2b hash;
 *   - tokens persist across restarts, and a second instance on the same store (the operator
 *     CLI) is seen after the reload interval;
 *   - TOKENS_MAX is enforced, and a refused rotation changes nothing.
 *
 * Note on time: tokens_open checks the store at the real clock (util_now), after which the
 * table is re-read at most once a second of *injected* time. Tests that use small fixed times
 * (1000, 2000, ...) therefore never trigger a reload, except the one test that wants it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tempdir.h"

#include <ctype.h>
#include <ftw.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/tokens.h"
#include "store/store.h"
#include "util/common.h"
#include "util/util.h"

#define SECRET_LEN 47   /* "sct_" + 43 base64url characters (256 bits, no padding) */
#define BOOTSTRAP "bootstrap-secret-from-the-environment-0123456789"

/* ---- fixture: a started store in a fresh temporary directory, and its tokens ------------- */

struct fx {
    char dir[64];
    char db[128];
    struct store *s;
    struct tokens *t;     /* the instance under test */
    struct tokens *t2;    /* a second instance on the same store (the operator CLI) */
};

static int setup(void **state) {
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (tempdir_make(f->dir, sizeof f->dir, "tokens") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/scout.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fx *f = *state;
    tokens_close(f->t2);
    tokens_close(f->t);
    store_close(f->s);
    int rc = tempdir_remove(f->dir);
    free(f);
    return rc;
}

static void open_store(struct fx *f) {
    assert_null(f->s);
    assert_int_equal(store_open_sqlite(&f->s, f->dir, false), SCOUT_OK);
    assert_int_equal(store_start(f->s), SCOUT_OK);
}

static struct tokens *open_tokens(struct fx *f, const char *bootstrap, int default_ttl_hours) {
    if (!f->s) open_store(f);
    assert_null(f->t);
    assert_int_equal(tokens_open(&f->t, f->s, bootstrap, default_ttl_hours), SCOUT_OK);
    assert_non_null(f->t);
    return f->t;
}

/* Closes the tokens and the store: what a process exit leaves behind. */
static void close_all(struct fx *f) {
    tokens_close(f->t2);
    tokens_close(f->t);
    store_close(f->s);
    f->t2 = NULL;
    f->t = NULL;
    f->s = NULL;
}

/* A created token: its secret and id, copied out of the create answer. */
struct made {
    char secret[64];
    char id[TOKEN_ID_LEN + 1];
};

static void take(json_t *out, struct made *m) {
    const char *secret = json_string_value(json_object_get(out, "token"));
    const char *id = json_string_value(json_object_get(out, "id"));
    assert_non_null(secret);
    assert_non_null(id);
    assert_true(strlen(secret) < sizeof m->secret);
    assert_int_equal(strlen(id), TOKEN_ID_LEN);
    snprintf(m->secret, sizeof m->secret, "%s", secret);
    snprintf(m->id, sizeof m->id, "%s", id);
}

static struct made create(struct tokens *t, const char *name, enum token_scope scope, double ttl, double now) {
    struct made m;
    json_t *out = NULL;
    assert_int_equal(tokens_create(t, name, scope, ttl, now, &out), SCOUT_OK);
    assert_non_null(out);
    take(out, &m);
    json_decref(out);
    return m;
}

static struct made rotate(struct tokens *t, const char *id, double grace, double now) {
    struct made m;
    json_t *out = NULL;
    assert_int_equal(tokens_rotate(t, id, grace, now, &out), SCOUT_OK);
    assert_non_null(out);
    take(out, &m);
    assert_string_equal(json_string_value(json_object_get(out, "replaces")), id);
    json_decref(out);
    return m;
}

static enum token_check verify(struct tokens *t, const char *secret, double now) {
    enum token_scope scope;
    char id[TOKEN_ID_LEN + 1];
    return tokens_verify(t, secret, now, &scope, id);
}

/* Verifies and checks that the answer is OK with this scope and id (failures are reported at
 * the caller's line). */
static void check_verifies(struct tokens *t, const char *secret, double now, enum token_scope want_scope,
                           const char *want_id, const char *file, int line) {
    enum token_scope scope = 0;
    char id[TOKEN_ID_LEN + 1] = "";
    _assert_int_equal(tokens_verify(t, secret, now, &scope, id), TOKEN_OK, file, line);
    _assert_int_equal(scope, want_scope, file, line);
    _assert_string_equal(id, want_id, file, line);
}
#define assert_verifies(t, secret, now, scope, id) check_verifies(t, secret, now, scope, id, __FILE__, __LINE__)

/* The entry of the listing with this id (borrowed from list), or NULL. */
static json_t *listed(json_t *list, const char *id) {
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "id")), id)) return e;
    }
    return NULL;
}

static const char *state_of(struct tokens *t, const char *id, double now, char *buf, size_t len) {
    json_t *list = tokens_list(t, now);
    json_t *e = listed(list, id);
    assert_non_null(e);
    snprintf(buf, len, "%s", json_string_value(json_object_get(e, "state")));
    json_decref(list);
    return buf;
}

static void hash_of(const char *secret, unsigned char out[32]) {
    crypto_generichash(out, 32, (const unsigned char *)secret, strlen(secret), NULL, 0);
}

/* The first 16 characters of a secret. */
static void prefix16(char out[17], const char *secret) {
    assert_true(strlen(secret) >= 16);
    memcpy(out, secret, 16);
    out[16] = '\0';
}

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

/* ---- creation and verification ------------------------------------------------------------ */

static void test_created_secret_starts_with_sct_and_is_47_chars(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    json_t *out = NULL;
    assert_int_equal(tokens_create(t, "ci", SCOPE_CLIENT, 0, 1000, &out), SCOUT_OK);
    const char *secret = json_string_value(json_object_get(out, "token"));
    const char *auth = json_string_value(json_object_get(out, "auth_token"));
    assert_non_null(secret);
    assert_non_null(auth);
    assert_int_equal(strlen(secret), SECRET_LEN);
    assert_memory_equal(secret, "sct_", 4);
    for (const char *p = secret + 4; *p; p++) assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_');
    assert_string_equal(secret, auth);
    /* the metadata of the answer */
    assert_true(is_hex(json_string_value(json_object_get(out, "id")), TOKEN_ID_LEN));
    assert_string_equal(json_string_value(json_object_get(out, "name")), "ci");
    assert_string_equal(json_string_value(json_object_get(out, "scope")), "client");
    assert_string_equal(json_string_value(json_object_get(out, "state")), "active");
    assert_true(json_is_null(json_object_get(out, "expires_at")));
    char fp[9];
    tokens_fingerprint(secret, fp);
    assert_string_equal(json_string_value(json_object_get(out, "fingerprint")), fp);

    /* two tokens never share a secret or an id */
    struct made a = create(t, "a", SCOPE_CLIENT, 0, 1000), b = create(t, "b", SCOPE_CLIENT, 0, 1000);
    assert_string_not_equal(a.secret, b.secret);
    assert_string_not_equal(a.id, b.id);
    assert_string_not_equal(a.secret, secret);
    json_decref(out);
}

static void test_verify_accepts_created_token_with_its_scope_and_id(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made client = create(t, "client", SCOPE_CLIENT, 0, 1000);
    struct made admin = create(t, "admin", SCOPE_ADMIN, 0, 1000);
    assert_verifies(t, client.secret, 1000, SCOPE_CLIENT, client.id);
    assert_verifies(t, admin.secret, 1000, SCOPE_ADMIN, admin.id);
    assert_verifies(t, client.secret, 1001, SCOPE_CLIENT, client.id);   /* and again */
}

static void test_unknown_empty_and_one_char_off_secrets_are_unknown(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made m = create(t, "x", SCOPE_ADMIN, 0, 1000);
    char s[64];

    assert_int_equal(verify(t, "sct_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1000), TOKEN_UNKNOWN);
    assert_int_equal(verify(t, "", 1000), TOKEN_UNKNOWN);
    /* one character changed, anywhere */
    for (size_t i = 0; i < SECRET_LEN; i++) {
        snprintf(s, sizeof s, "%s", m.secret);
        s[i] = s[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(t, s, 1000), TOKEN_UNKNOWN);
    }
    /* one character missing or added */
    snprintf(s, sizeof s, "%s", m.secret);
    s[SECRET_LEN - 1] = '\0';
    assert_int_equal(verify(t, s, 1000), TOKEN_UNKNOWN);
    memcpy(s, m.secret, SECRET_LEN);
    memcpy(s + SECRET_LEN, "A", 2);
    assert_int_equal(verify(t, s, 1000), TOKEN_UNKNOWN);
    /* the id is not a secret */
    assert_int_equal(verify(t, m.id, 1000), TOKEN_UNKNOWN);
    /* and the real one still works */
    assert_verifies(t, m.secret, 1000, SCOPE_ADMIN, m.id);
}

/* ---- expiry ------------------------------------------------------------------------------- */

static void test_token_expires_exactly_at_created_plus_ttl(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made m = create(t, "short", SCOPE_CLIENT, 60, 1000);
    assert_verifies(t, m.secret, 1000, SCOPE_CLIENT, m.id);
    assert_verifies(t, m.secret, 1059.9, SCOPE_CLIENT, m.id);
    assert_int_equal(verify(t, m.secret, 1060), TOKEN_EXPIRED);
    assert_int_equal(verify(t, m.secret, 5000), TOKEN_EXPIRED);
}

static void test_ttl_zero_never_expires(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made m = create(t, "forever", SCOPE_CLIENT, 0, 1000);
    assert_verifies(t, m.secret, 1000 + 24 * 3600, SCOPE_CLIENT, m.id);   /* not the default lifetime */
    assert_verifies(t, m.secret, 1e12, SCOPE_CLIENT, m.id);
}

static void test_negative_ttl_uses_default_ttl_hours(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 2);
    struct made m = create(t, "default", SCOPE_CLIENT, -1, 1000);
    assert_verifies(t, m.secret, 1000 + 7200 - 0.1, SCOPE_CLIENT, m.id);
    assert_int_equal(verify(t, m.secret, 1000 + 7200), TOKEN_EXPIRED);

    /* with a default of 0 hours, ttl < 0 never expires */
    assert_int_equal(tokens_open(&f->t2, f->s, NULL, 0), SCOUT_OK);
    struct made n = create(f->t2, "default-never", SCOPE_CLIENT, -1, 1000);
    assert_verifies(f->t2, n.secret, 1e9, SCOPE_CLIENT, n.id);
}

/* ---- revocation and rotation -------------------------------------------------------------- */

static void test_revoke_is_immediate_and_unknown_id_is_not_found(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made m = create(t, "r", SCOPE_ADMIN, 0, 1000);
    struct made other = create(t, "other", SCOPE_ADMIN, 0, 1000);
    assert_verifies(t, m.secret, 1500, SCOPE_ADMIN, m.id);
    assert_int_equal(tokens_revoke(t, m.id, 1500), SCOUT_OK);
    assert_int_equal(verify(t, m.secret, 1500), TOKEN_REVOKED);
    assert_int_equal(verify(t, m.secret, 1e9), TOKEN_REVOKED);
    /* revoking again is harmless; the other token is untouched */
    assert_int_equal(tokens_revoke(t, m.id, 1600), SCOUT_OK);
    assert_int_equal(verify(t, m.secret, 1600), TOKEN_REVOKED);
    assert_verifies(t, other.secret, 1600, SCOPE_ADMIN, other.id);

    assert_int_equal(tokens_revoke(t, "0123456789abcdef", 1600), SCOUT_ENOTFOUND);
    assert_int_equal(tokens_revoke(t, "", 1600), SCOUT_ENOTFOUND);
}

static void test_rotate_keeps_old_token_for_grace_then_revokes_it(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made old = create(t, "deploy-bot", SCOPE_ADMIN, 0, 1000);
    struct made next = rotate(t, old.id, 30, 2000);
    assert_string_not_equal(next.id, old.id);
    assert_string_not_equal(next.secret, old.secret);
    assert_int_equal(strlen(next.secret), SECRET_LEN);

    assert_verifies(t, old.secret, 2000, SCOPE_ADMIN, old.id);
    assert_verifies(t, old.secret, 2029.9, SCOPE_ADMIN, old.id);
    assert_int_equal(verify(t, old.secret, 2030), TOKEN_REVOKED);
    assert_int_equal(verify(t, old.secret, 1e9), TOKEN_REVOKED);

    /* the successor: same scope and name, works from the start and never expires (like its
     * predecessor) */
    assert_verifies(t, next.secret, 2000, SCOPE_ADMIN, next.id);
    assert_verifies(t, next.secret, 1e9, SCOPE_ADMIN, next.id);
    json_t *list = tokens_list(t, 2000);
    json_t *e = listed(list, next.id);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "deploy-bot");
    assert_string_equal(json_string_value(json_object_get(e, "scope")), "admin");
    json_decref(list);
}

static void test_rotate_answer_names_the_replaced_token(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made old = create(t, "svc", SCOPE_CLIENT, 0, 1000);
    json_t *out = NULL;
    assert_int_equal(tokens_rotate(t, old.id, 30, 2000, &out), SCOUT_OK);
    assert_string_equal(json_string_value(json_object_get(out, "replaces")), old.id);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "svc");
    assert_string_equal(json_string_value(json_object_get(out, "scope")), "client");
    assert_string_equal(json_string_value(json_object_get(out, "token")),
                        json_string_value(json_object_get(out, "auth_token")));
    json_decref(out);
}

static void test_rotated_successor_keeps_the_predecessors_lifetime(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    /* a 1-hour token rotated after 1000 s: the successor lives 1 hour from the rotation */
    struct made old = create(t, "hourly", SCOPE_CLIENT, 3600, 1000);
    struct made next = rotate(t, old.id, 30, 2000);
    assert_verifies(t, next.secret, 5599.9, SCOPE_CLIENT, next.id);
    assert_int_equal(verify(t, next.secret, 5600), TOKEN_EXPIRED);

    /* a grace period longer than the old token's remaining life does not extend it */
    struct made brief = create(t, "brief", SCOPE_CLIENT, 60, 1000);
    (void)rotate(t, brief.id, 3600, 1050);
    assert_verifies(t, brief.secret, 1059.9, SCOPE_CLIENT, brief.id);
    assert_int_equal(verify(t, brief.secret, 1060), TOKEN_REVOKED);
}

static void test_rotate_unknown_id_is_not_found(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, BOOTSTRAP, 24);
    json_t *out = NULL;
    (void)create(t, "x", SCOPE_CLIENT, 0, 1000);
    assert_int_equal(tokens_rotate(t, "0123456789abcdef", 30, 2000, &out), SCOUT_ENOTFOUND);
    assert_null(out);
    /* the bootstrap token lives in the environment: it cannot be rotated or revoked here */
    assert_int_equal(tokens_rotate(t, "bootstrap", 30, 2000, &out), SCOUT_ENOTFOUND);
    assert_null(out);
    assert_int_equal(tokens_revoke(t, "bootstrap", 2000), SCOUT_ENOTFOUND);
    assert_verifies(t, BOOTSTRAP, 2000, SCOPE_ADMIN, "bootstrap");
    /* nothing was added */
    json_t *list = tokens_list(t, 2000);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
}

/* ---- the bootstrap token and tokens_have_admin -------------------------------------------- */

static void test_bootstrap_token_is_admin_never_expires_and_is_not_persisted(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, BOOTSTRAP, 1);
    assert_verifies(t, BOOTSTRAP, 1000, SCOPE_ADMIN, "bootstrap");
    assert_verifies(t, BOOTSTRAP, 1e12, SCOPE_ADMIN, "bootstrap");
    (void)create(t, "x", SCOPE_CLIENT, 0, 1000);   /* the store has a tokens table with a row */

    /* it is nowhere in the store */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(store_flush(f->s), SCOUT_OK);
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens WHERE id='bootstrap' OR hash=?", -1, &st,
                                        NULL), SQLITE_OK);
    unsigned char h[32];
    hash_of(BOOTSTRAP, h);
    sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* restarted without it configured, it is unknown */
    close_all(f);
    t = open_tokens(f, NULL, 1);
    assert_int_equal(verify(t, BOOTSTRAP, 1000), TOKEN_UNKNOWN);
    assert_int_equal(tokens_have_admin(t, 1000), 0);
}

static void test_have_admin_with_bootstrap_or_live_admin_token_only(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    assert_int_equal(tokens_have_admin(t, 1000), 0);              /* nothing */
    (void)create(t, "c1", SCOPE_CLIENT, 0, 1000);
    (void)create(t, "c2", SCOPE_CLIENT, 60, 1000);
    assert_int_equal(tokens_have_admin(t, 1000), 0);              /* only client tokens */

    struct made exp = create(t, "a-exp", SCOPE_ADMIN, 60, 1000);   /* expires at 1060 */
    struct made rev = create(t, "a-rev", SCOPE_ADMIN, 0, 1000);
    assert_int_equal(tokens_have_admin(t, 1000), 1);
    assert_int_equal(tokens_revoke(t, rev.id, 1010), SCOUT_OK);
    assert_int_equal(tokens_have_admin(t, 1059), 1);              /* a-exp still alive */
    assert_int_equal(tokens_have_admin(t, 1060), 0);              /* only expired + revoked admins */
    (void)exp;

    /* a rotated admin token past its grace is no admin either (its successor is) */
    struct made rot = create(t, "a-rot", SCOPE_ADMIN, 0, 1100);
    struct made succ = rotate(t, rot.id, 10, 1100);
    assert_int_equal(tokens_revoke(t, succ.id, 1100), SCOUT_OK);
    assert_int_equal(tokens_have_admin(t, 1109), 1);              /* a-rot in its grace period */
    assert_int_equal(tokens_have_admin(t, 1110), 0);

    /* the bootstrap token alone is enough, whatever the time */
    assert_int_equal(tokens_open(&f->t2, f->s, BOOTSTRAP, 24), SCOUT_OK);
    assert_int_equal(tokens_have_admin(f->t2, 1060), 1);
    assert_int_equal(tokens_have_admin(f->t2, 1e12), 1);
}

/* ---- listing ------------------------------------------------------------------------------ */

/* Fails when any string (keys included) anywhere in j contains needle. */
static void assert_no_string_contains(const json_t *j, const char *needle) {
    size_t i;
    const char *k;
    json_t *v;
    switch (json_typeof(j)) {
    case JSON_STRING:
        if (strstr(json_string_value(j), needle)) fail_msg("listing contains \"%s\"", needle);
        break;
    case JSON_ARRAY:
        json_array_foreach(j, i, v) assert_no_string_contains(v, needle);
        break;
    case JSON_OBJECT:
        json_object_foreach((json_t *)j, k, v) {
            if (strstr(k, needle)) fail_msg("listing key contains \"%s\"", needle);
            assert_no_string_contains(v, needle);
        }
        break;
    default: break;
    }
}

static void assert_list_free_of(const json_t *list, const char *secret) {
    char prefix[17], hex[65];
    unsigned char h[32];
    prefix16(prefix, secret);
    hash_of(secret, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_no_string_contains(list, secret);
    assert_no_string_contains(list, prefix);
    assert_no_string_contains(list, secret + 4);      /* the random part without "sct_" */
    assert_no_string_contains(list, hex);             /* nor the stored hash */
    char *dump = json_dumps(list, JSON_COMPACT);
    assert_non_null(dump);
    assert_null(strstr(dump, prefix));
    assert_null(strstr(dump, secret + 4));
    free(dump);
}

static void test_list_never_contains_a_secret(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, BOOTSTRAP, 24);
    struct made m[5];
    m[0] = create(t, "active", SCOPE_CLIENT, 0, 1000);
    m[1] = create(t, "admin", SCOPE_ADMIN, 60, 1000);
    m[2] = create(t, "revoked", SCOPE_CLIENT, 0, 1000);
    m[3] = create(t, "rotated", SCOPE_CLIENT, 0, 1000);
    assert_int_equal(tokens_revoke(t, m[2].id, 1010), SCOUT_OK);
    m[4] = rotate(t, m[3].id, 30, 1020);
    double times[] = {1000, 1025, 5000};
    for (size_t k = 0; k < 3; k++) {
        json_t *list = tokens_list(t, times[k]);
        assert_int_equal(json_array_size(list), 6);   /* bootstrap + 5 */
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            assert_null(json_object_get(e, "token"));
            assert_null(json_object_get(e, "auth_token"));
            assert_null(json_object_get(e, "hash"));
        }
        for (size_t j = 0; j < 5; j++) assert_list_free_of(list, m[j].secret);
        assert_list_free_of(list, BOOTSTRAP);
        json_decref(list);
    }
}

static void test_list_shows_active_expired_revoked_and_rotated_states(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, BOOTSTRAP, 24);
    char buf[32];
    struct made active = create(t, "active", SCOPE_CLIENT, 0, 1000);
    struct made expiring = create(t, "expiring", SCOPE_CLIENT, 60, 1000);
    struct made revoked = create(t, "revoked", SCOPE_ADMIN, 0, 1000);
    struct made rotated = create(t, "rotated", SCOPE_CLIENT, 0, 1000);
    assert_int_equal(tokens_revoke(t, revoked.id, 1010), SCOUT_OK);
    struct made successor = rotate(t, rotated.id, 30, 1020);

    assert_string_equal(state_of(t, active.id, 1030, buf, sizeof buf), "active");
    assert_string_equal(state_of(t, expiring.id, 1059, buf, sizeof buf), "active");
    assert_string_equal(state_of(t, expiring.id, 1060, buf, sizeof buf), "expired");
    assert_string_equal(state_of(t, revoked.id, 1010, buf, sizeof buf), "revoked");
    assert_string_equal(state_of(t, rotated.id, 1030, buf, sizeof buf), "rotated");   /* in its grace */
    assert_string_equal(state_of(t, rotated.id, 1e6, buf, sizeof buf), "rotated");    /* and after */
    assert_string_equal(state_of(t, successor.id, 1e6, buf, sizeof buf), "active");
    assert_string_equal(state_of(t, "bootstrap", 1e6, buf, sizeof buf), "active");

    /* a revoked token that also expired reads as revoked; its times are set */
    json_t *list = tokens_list(t, 1e6);
    json_t *e = listed(list, revoked.id);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "revoked");
    assert_true(json_is_string(json_object_get(e, "revoked_at")));
    assert_true(json_is_null(json_object_get(e, "rotated_at")));
    e = listed(list, rotated.id);
    assert_true(json_is_string(json_object_get(e, "rotated_at")));
    assert_true(json_is_null(json_object_get(e, "revoked_at")));
    e = listed(list, expiring.id);
    char iso[40];
    util_iso8601(1060, iso, sizeof iso);
    assert_string_equal(json_string_value(json_object_get(e, "expires_at")), iso);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "expired");
    assert_int_equal(json_array_size(list), 6);
    json_decref(list);
}

static void test_list_fingerprint_equals_tokens_fingerprint_and_differs(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, BOOTSTRAP, 24);
    enum { N = 8 };
    struct made m[N];
    char fp[N + 1][9];
    for (int i = 0; i < N; i++) {
        m[i] = create(t, "fp", SCOPE_CLIENT, 0, 1000);
        tokens_fingerprint(m[i].secret, fp[i]);
        assert_true(is_hex(fp[i], 8));
    }
    tokens_fingerprint(BOOTSTRAP, fp[N]);
    json_t *list = tokens_list(t, 1000);
    for (int i = 0; i < N; i++) {
        json_t *e = listed(list, m[i].id);
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "fingerprint")), fp[i]);
        /* not a piece of the secret */
        assert_null(strstr(m[i].secret, fp[i]));
    }
    assert_string_equal(json_string_value(json_object_get(listed(list, "bootstrap"), "fingerprint")), fp[N]);
    for (int i = 0; i <= N; i++)
        for (int j = i + 1; j <= N; j++) assert_string_not_equal(fp[i], fp[j]);
    /* deterministic */
    char again[9];
    tokens_fingerprint(m[0].secret, again);
    assert_string_equal(again, fp[0]);
    json_decref(list);
}

/* ---- persistence -------------------------------------------------------------------------- */

static void test_token_still_verifies_after_close_and_reopen(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made client = create(t, "client", SCOPE_CLIENT, 0, 1000);
    struct made admin = create(t, "admin", SCOPE_ADMIN, 3600, 1000);
    struct made revoked = create(t, "revoked", SCOPE_ADMIN, 0, 1000);
    struct made rotated = create(t, "rotated", SCOPE_CLIENT, 0, 1000);
    assert_int_equal(tokens_revoke(t, revoked.id, 1100), SCOUT_OK);
    struct made successor = rotate(t, rotated.id, 30, 1200);
    close_all(f);

    t = open_tokens(f, NULL, 24);
    assert_verifies(t, client.secret, 1300, SCOPE_CLIENT, client.id);
    assert_verifies(t, admin.secret, 1300, SCOPE_ADMIN, admin.id);
    assert_int_equal(verify(t, admin.secret, 4600), TOKEN_EXPIRED);
    assert_int_equal(verify(t, revoked.secret, 1300), TOKEN_REVOKED);
    assert_verifies(t, rotated.secret, 1229, SCOPE_CLIENT, rotated.id);
    assert_int_equal(verify(t, rotated.secret, 1230), TOKEN_REVOKED);
    assert_verifies(t, successor.secret, 1300, SCOPE_CLIENT, successor.id);
    json_t *list = tokens_list(t, 1300);
    assert_int_equal(json_array_size(list), 5);
    assert_string_equal(json_string_value(json_object_get(listed(list, admin.id), "name")), "admin");
    json_decref(list);
}

static int memfind(const void *hay, size_t n, const char *needle) {
    return n >= strlen(needle) && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* The whole file, or NULL when it does not exist. */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (!fp) return NULL;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        r = fread(buf + n, 1, cap - n, fp);
        n += r;
    } while (r > 0);
    fclose(fp);
    *len = n;
    return buf;
}

static void test_store_row_holds_32_byte_hash_and_not_the_secret(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    enum { N = 3 };
    struct made m[N];
    m[0] = create(t, "one", SCOPE_CLIENT, 0, 1000);
    m[1] = create(t, "two", SCOPE_ADMIN, 60, 1000);
    m[2] = rotate(t, m[0].id, 30, 1010);
    assert_verifies(t, m[1].secret, 1001, SCOPE_ADMIN, m[1].id);   /* queues a last_used write */
    assert_int_equal(store_flush(f->s), SCOUT_OK);

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rows = 0, seen[N] = {0};
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM tokens", -1, &st, NULL), SQLITE_OK);
    int ncol = sqlite3_column_count(st), hash_col = -1, id_col = -1;
    for (int c = 0; c < ncol; c++) {
        if (!strcmp(sqlite3_column_name(st, c), "hash")) hash_col = c;
        if (!strcmp(sqlite3_column_name(st, c), "id")) id_col = c;
    }
    assert_true(hash_col >= 0 && id_col >= 0);
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        const char *id = (const char *)sqlite3_column_text(st, id_col);
        int which = -1;
        for (int i = 0; i < N; i++)
            if (!strcmp(id, m[i].id)) which = i;
        assert_true(which >= 0);
        seen[which] = 1;
        /* no column holds any secret, whole or in part, as text or as bytes */
        for (int c = 0; c < ncol; c++) {
            int type = sqlite3_column_type(st, c);
            if (type != SQLITE_TEXT && type != SQLITE_BLOB) continue;
            const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, c) : sqlite3_column_blob(st, c);
            size_t n = (size_t)sqlite3_column_bytes(st, c);
            for (int i = 0; i < N; i++) {
                char prefix[17];
                prefix16(prefix, m[i].secret);
                assert_false(memfind(p, n, m[i].secret));
                assert_false(memfind(p, n, m[i].secret + 4));
                assert_false(memfind(p, n, prefix));
            }
        }
        /* the hash: a 32-byte blob, BLAKE2b-256 of the secret */
        unsigned char h[32];
        hash_of(m[which].secret, h);
        assert_int_equal(sqlite3_column_type(st, hash_col), SQLITE_BLOB);
        assert_int_equal(sqlite3_column_bytes(st, hash_col), 32);
        assert_memory_equal(sqlite3_column_blob(st, hash_col), h, 32);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(rows, N);
    for (int i = 0; i < N; i++) assert_true(seen[i]);

    /* and no secret is anywhere in the database files, free pages and journal included */
    const char *suffixes[] = {"", "-wal", "-journal"};
    for (size_t k = 0; k < 3; k++) {
        char path[160];
        size_t len = 0;
        snprintf(path, sizeof path, "%s%s", f->db, suffixes[k]);
        unsigned char *bytes = slurp(path, &len);
        if (!bytes) continue;
        for (int i = 0; i < N; i++) {
            char prefix[17];
            prefix16(prefix, m[i].secret);
            assert_false(memfind(bytes, len, m[i].secret + 4));
            assert_false(memfind(bytes, len, prefix));
        }
        free(bytes);
    }
}

/* ---- a second instance on the same store (the operator CLI) -------------------------------- */

static void test_second_instance_changes_are_seen_after_reload_interval(void **state) {
    struct fx *f = *state;
    open_store(f);
    struct tokens *t = open_tokens(f, NULL, 24);
    /* tokens_open checked the store at the real clock; the next check is due 1 s later */
    double opened = util_now();
    struct made own = create(t, "own", SCOPE_CLIENT, 0, opened);

    assert_int_equal(tokens_open(&f->t2, f->s, NULL, 24), SCOUT_OK);
    struct made cli = create(f->t2, "from-cli", SCOPE_ADMIN, 0, opened);
    assert_verifies(f->t2, cli.secret, opened, SCOPE_ADMIN, cli.id);   /* the CLI itself sees it */

    double later = opened + 1.1;
    assert_verifies(t, cli.secret, later, SCOPE_ADMIN, cli.id);
    assert_verifies(t, own.secret, later, SCOPE_CLIENT, own.id);     /* its own survive the reload */
    assert_int_equal(tokens_have_admin(t, later), 1);

    /* a revocation by the CLI too */
    assert_int_equal(tokens_revoke(f->t2, cli.id, later), SCOUT_OK);
    assert_int_equal(verify(t, cli.secret, later + 1.1), TOKEN_REVOKED);
    assert_int_equal(tokens_have_admin(t, later + 1.1), 0);
    char buf[32];
    assert_string_equal(state_of(t, cli.id, later + 1.1, buf, sizeof buf), "revoked");
}

/* Runs sql on an independent connection to the fixture's database. */
static void exec_outside(const struct fx *f, const char *sql) {
    sqlite3 *db = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
}

/* BUG (tokens.c, maybe_reload): the table is emptied (t->n = 0) before store_load_tokens runs
 * and its result is ignored, while t->version is updated anyway. A reload that fails (here the
 * tokens table is briefly unreadable) leaves the server with no tokens at all, and since the
 * version is recorded as loaded it stays that way after the store is healthy again, until
 * some token changes: every token holder gets 401. */
static void test_failed_reload_keeps_the_loaded_tokens(void **state) {
    struct fx *f = *state;
    open_store(f);
    struct tokens *t = open_tokens(f, NULL, 24);
    double opened = util_now();
    struct made m = create(t, "kept", SCOPE_ADMIN, 0, opened);

    /* another process bumps the version while the table cannot be read */
    exec_outside(f, "ALTER TABLE tokens RENAME TO tokens_away;"
                    "UPDATE meta SET value=CAST(value AS INTEGER)+1 WHERE key='tokens_version';");
    enum token_check during = verify(t, m.secret, opened + 1.1);
    exec_outside(f, "ALTER TABLE tokens_away RENAME TO tokens;");
    /* the store answers again: the token must work (it never changed) */
    assert_verifies(t, m.secret, opened + 2.2, SCOPE_ADMIN, m.id);
    assert_verifies(t, m.secret, opened + 3.3, SCOPE_ADMIN, m.id);
    /* and ideally it never stopped working: the last good table is better than none */
    assert_int_equal(during, TOKEN_OK);
}

/* ---- capacity ----------------------------------------------------------------------------- */

/* Fills t up to TOKENS_MAX through the API; the secrets of the first and last go to *first
 * and *last. */
static void fill_to_capacity(struct tokens *t, struct made *first, struct made *last) {
    for (int i = 0; i < TOKENS_MAX; i++) {
        json_t *out = NULL;
        assert_int_equal(tokens_create(t, "bulk", SCOPE_CLIENT, 0, 1000 + i * 0.001, &out), SCOUT_OK);
        if (i == 0) take(out, first);
        if (i == TOKENS_MAX - 1) take(out, last);
        json_decref(out);
    }
}

static void test_tokens_max_is_enforced(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made first, last;
    json_t *out = NULL;
    fill_to_capacity(t, &first, &last);
    assert_int_equal(tokens_create(t, "one-too-many", SCOPE_CLIENT, 0, 2000, &out), SCOUT_EINVAL);
    assert_null(out);
    assert_verifies(t, first.secret, 2000, SCOPE_CLIENT, first.id);
    assert_verifies(t, last.secret, 2000, SCOPE_CLIENT, last.id);
    json_t *list = tokens_list(t, 2000);
    assert_int_equal(json_array_size(list), TOKENS_MAX);
    json_decref(list);
}

/* BUG (tokens.c, tokens_rotate): the old token is marked rotated (and committed) before the
 * successor is added; when add_token then refuses because the table is full, the caller gets
 * SCOUT_EINVAL ("too many tokens") yet the old token dies after the grace period, with no
 * successor: a failed rotation locks its holder out. */
static void test_refused_rotation_at_capacity_leaves_old_token_valid(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made first, last;
    json_t *out = NULL;
    char buf[32];
    fill_to_capacity(t, &first, &last);
    assert_int_not_equal(tokens_rotate(t, first.id, 30, 2000, &out), SCOUT_OK);
    assert_null(out);
    /* refused, so nothing changed: the token is not rotated and works after the grace */
    assert_string_equal(state_of(t, first.id, 2000, buf, sizeof buf), "active");
    assert_verifies(t, first.secret, 2031, SCOPE_CLIENT, first.id);
}

/* BUG (tokens.c, add_token / load_one): revoked, expired and rotated tokens count towards
 * TOKENS_MAX forever (nothing ever removes them), so after TOKENS_MAX tokens were ever created
 * or rotated no token can be created again — though the API's refusal says "revoke some
 * first". */
static void test_revoking_a_token_makes_room_at_capacity(void **state) {
    struct fx *f = *state;
    struct tokens *t = open_tokens(f, NULL, 24);
    struct made first, last;
    json_t *out = NULL;
    fill_to_capacity(t, &first, &last);
    assert_int_equal(tokens_revoke(t, first.id, 2000), SCOUT_OK);
    assert_int_equal(tokens_create(t, "after-revoke", SCOPE_CLIENT, 0, 2001, &out), SCOUT_OK);
    json_decref(out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        T(test_created_secret_starts_with_sct_and_is_47_chars),
        T(test_verify_accepts_created_token_with_its_scope_and_id),
        T(test_unknown_empty_and_one_char_off_secrets_are_unknown),
        T(test_token_expires_exactly_at_created_plus_ttl),
        T(test_ttl_zero_never_expires),
        T(test_negative_ttl_uses_default_ttl_hours),
        T(test_revoke_is_immediate_and_unknown_id_is_not_found),
        T(test_rotate_keeps_old_token_for_grace_then_revokes_it),
        T(test_rotate_answer_names_the_replaced_token),
        T(test_rotated_successor_keeps_the_predecessors_lifetime),
        T(test_rotate_unknown_id_is_not_found),
        T(test_bootstrap_token_is_admin_never_expires_and_is_not_persisted),
        T(test_have_admin_with_bootstrap_or_live_admin_token_only),
        T(test_list_never_contains_a_secret),
        T(test_list_shows_active_expired_revoked_and_rotated_states),
        T(test_list_fingerprint_equals_tokens_fingerprint_and_differs),
        T(test_token_still_verifies_after_close_and_reopen),
        T(test_store_row_holds_32_byte_hash_and_not_the_secret),
        T(test_second_instance_changes_are_seen_after_reload_interval),
        T(test_failed_reload_keeps_the_loaded_tokens),
        T(test_tokens_max_is_enforced),
        T(test_refused_rotation_at_capacity_leaves_old_token_valid),
        T(test_revoking_a_token_makes_room_at_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
