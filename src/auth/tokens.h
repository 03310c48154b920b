/* tokens.h — API tokens: creation, verification, rotation, revocation, listing.
 * A token is 256 random bits from the OS CSPRNG, shown once; only its BLAKE2b-256 hash is
 * kept, in memory and in the store. Verification hashes the presented token and compares it
 * with every known hash in constant time (sodium_memcmp), so timing tells nothing about which
 * hashes exist. Tokens created or revoked by another process on the same store (the operator
 * CLI) are picked up within TOKENS_RELOAD_SECONDS. */
#ifndef SCOUT_TOKENS_H
#define SCOUT_TOKENS_H

#include <jansson.h>

#include "store/store.h"

#define TOKEN_NAME_MAX 64
#define TOKEN_ID_LEN 16          /* public id: 16 hex characters */
#define TOKENS_MAX 1000          /* tokens kept; at the cap dead ones are forgotten, then creation is refused */
#define TOKEN_MIN_BOOTSTRAP 32   /* characters a bootstrap token must have */
#define TOKEN_MAX_PRESENTED 512  /* longer bearer values are refused unhashed */

enum token_scope { SCOPE_CLIENT = 1, SCOPE_ADMIN = 2 };

enum token_check {
    TOKEN_OK = 0,
    TOKEN_UNKNOWN,
    TOKEN_EXPIRED,
    TOKEN_REVOKED,    /* revoked, or rotated and past its grace period */
};

struct tokens;

/* bootstrap: an admin token from the environment (NULL for none); it is kept in memory only
 * and never expires while configured. default_ttl_hours: lifetime of new tokens (0 = never). */
int tokens_open(struct tokens **out, struct store *store, const char *bootstrap, int default_ttl_hours);
void tokens_close(struct tokens *t);

/* Checks a presented secret at time now; on TOKEN_OK fills *scope and the token's id
 * (id: at least TOKEN_ID_LEN + 1 bytes). */
enum token_check tokens_verify(struct tokens *t, const char *secret, double now, enum token_scope *scope, char *id);

/* Creates a token. ttl_seconds < 0 means the default lifetime, 0 never expires. On success
 * *out is a new object with the secret under "token" and "auth_token" and its metadata:
 * the only time the secret exists outside the caller's request. */
int tokens_create(struct tokens *t, const char *name, enum token_scope scope, double ttl_seconds, double now,
                  json_t **out);

/* Revokes the token with this id; SCOUT_ENOTFOUND when there is none. */
int tokens_revoke(struct tokens *t, const char *id, double now);

/* Issues a successor with the same name and scope; the old token stays valid for grace
 * seconds (or less, if it expires sooner). *out as for tokens_create, plus "replaces" and
 * "old_valid_for_seconds". SCOUT_ECONFLICT when the token is not active or already rotated. */
int tokens_rotate(struct tokens *t, const char *id, double grace, double now, json_t **out);

/* Metadata of every token (never a secret or a hash). New reference. */
json_t *tokens_list(struct tokens *t, double now);

/* Whether an admin token that works at time now exists (bootstrap included). */
int tokens_have_admin(struct tokens *t, double now);

/* The fingerprint shown for a secret (8 hex characters + NUL into out). */
void tokens_fingerprint(const char *secret, char out[9]);

const char *tokens_scope_name(enum token_scope scope);
int tokens_parse_scope(const char *name, enum token_scope *out);

#endif
