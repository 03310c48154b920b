/* common.h — the return codes and hard limits every Scout module shares.
 * Functions that can fail return one of the SCOUT_* codes and hand results back through
 * out-parameters. Every growth path on untrusted input has a named cap here, checked before
 * the allocation, so crossing it is a clear 4xx rather than an abort or a silent truncation. */
#ifndef SCOUT_COMMON_H
#define SCOUT_COMMON_H

#include <stddef.h>

enum {
    SCOUT_OK = 0,
    SCOUT_ERR = -1,       /* generic failure, logged where it happened */
    SCOUT_ENOMEM = -2,
    SCOUT_ESTORE = -3,    /* the store refused or is unreachable */
    SCOUT_EINVAL = -4,    /* caller passed something invalid */
    SCOUT_ENOTFOUND = -5,
    SCOUT_ECLOSED = -6,   /* the component is shutting down */
    SCOUT_ECONFLICT = -7, /* the object's state does not allow this (409) */
};

/* Limits on what a client may send. */
#define SCOUT_MAX_BODY          (1024 * 1024)     /* request body: 1 MiB, else 413 */
#define SCOUT_MAX_BODY_DRAIN    (8 * 1024 * 1024) /* larger declared bodies are not even read */
#define SCOUT_MAX_HEADERS       (16 * 1024)       /* request line and headers together, else 431 */
#define SCOUT_MAX_URI           (8 * 1024)        /* path and query string, else 414 */
#define SCOUT_MAX_VARIANTS      256
#define SCOUT_MAX_NAME          256               /* test name, in bytes */
#define SCOUT_MAX_LABEL         256               /* variant label, in bytes */
#define SCOUT_MAX_CONTEXT_KEYS  64
#define SCOUT_MAX_CONTEXT_KEY   128
#define SCOUT_MAX_CONTEXT_STR   1024
#define SCOUT_MAX_REQUEST_ID    128
#define SCOUT_MAX_STICKY_USER   256               /* a sticky test's user key, in bytes */
#define SCOUT_MAX_UPDATES       10000             /* updates in one update_model request */
#define SCOUT_MAX_FEATURES      64                /* entries of a test's features allow-list */
#define SCOUT_MAX_VARIANT_ID    1000000000        /* variant ids are integers 0..this */
#define SCOUT_MAX_REWARD        1e12              /* |reward|: sums and squares stay finite */

#define SCOUT_ID_LEN 36                           /* UUIDv4 text form */

#endif
