/* cli.c — `scoutd token create|list|revoke [--data-dir DIR | --redis URL]`.
 * Opens the same store a running server uses (SQLite WAL lets both write); the server sees the
 * change within a second (tokens.c reloads on a version bump). Output is JSON, one object per
 * line, so scripts can read it; the secret of a new token is printed once, on stdout only. */
#include "config.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/tokens.h"
#include "obs/log.h"
#include "store/store.h"
#include "util/util.h"

static void usage(void) {
    fprintf(stderr, "usage: scoutd token create [STORE] [--name NAME] [--scope admin|client] [--ttl-hours H]\n"
                    "       scoutd token list [STORE]\n"
                    "       scoutd token revoke ID [STORE]\n"
                    "STORE: --data-dir DIR (default ./data, or SCOUT_DATA_DIR) or --redis URL (or REDIS_HOST...)\n");
}

static void print_json(json_t *v) {
    char *text = json_dumps(v, JSON_COMPACT);
    if (text) puts(text);
    free(text);
}

int cli_token(int argc, char **argv) {
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"name", required_argument, NULL, 'n'},
        {"redis", required_argument, NULL, 'r'},
        {"scope", required_argument, NULL, 's'},    {"ttl-hours", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *redis = NULL, *name = "cli token", *cmd, *id = NULL;
    struct config cfg;
    char err[256];
    enum token_scope scope = SCOPE_ADMIN;
    double ttl = -1;
    struct store *store = NULL;
    struct tokens *tokens = NULL;
    json_t *out = NULL;
    int c, rc = 1;
    char *end;

    if (argc < 2) {
        usage();
        return 2;
    }
    cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': redis = optarg; break;
        case 'n': name = optarg; break;
        case 's':
            if (!tokens_parse_scope(optarg, &scope)) {
                fprintf(stderr, "scoutd token: --scope must be admin or client\n");
                return 2;
            }
            break;
        case 't':
            ttl = strtod(optarg, &end) * 3600.0;
            if (*end || ttl < 0) {
                fprintf(stderr, "scoutd token: --ttl-hours must be a number >= 0 (0 = never expires)\n");
                return 2;
            }
            break;
        default: usage(); return 2;
        }
    }
    if (optind < argc) id = argv[optind];
    if (strlen(name) == 0 || strlen(name) > TOKEN_NAME_MAX) {
        fprintf(stderr, "scoutd token: --name must be 1 to %d characters\n", TOKEN_NAME_MAX);
        return 2;
    }
    {   /* The same store scoutd would open: flags, then SCOUT_DATA_DIR / REDIS_* from the environment. */
        char *cargv[5] = {"scoutd"};
        int cargc = 1;
        if (dir) {
            cargv[cargc++] = "--data-dir";
            cargv[cargc++] = (char *)dir;
        }
        if (redis) {
            cargv[cargc++] = "--redis";
            cargv[cargc++] = (char *)redis;
        }
        optind = 1;
        if (config_load(&cfg, cargc, cargv) != 0) return 2;
    }
    /* Logs of the store go to stderr here: stdout carries the answer. */
    log_set_level("error");
    rc = store_open_configured(&store, &cfg, err, sizeof err);
    if (rc != SCOUT_OK) {
        fprintf(stderr, "scoutd token: %s\n", err);
        rc = rc == SCOUT_EINVAL ? 2 : 1;
        config_free(&cfg);
        return rc;
    }
    rc = 1;
    if (store_start(store) != SCOUT_OK || tokens_open(&tokens, store, NULL, 24) != SCOUT_OK) {
        fprintf(stderr, "scoutd token: cannot use the store\n");
        goto done;
    }
    if (!strcmp(cmd, "create")) {
        if (tokens_create(tokens, name, scope, ttl, util_now(), &out) != SCOUT_OK) {
            fprintf(stderr, "scoutd token: the token was not created (store error or too many tokens)\n");
            goto done;
        }
        print_json(out);
        rc = 0;
    } else if (!strcmp(cmd, "list")) {
        size_t i;
        json_t *t;
        out = tokens_list(tokens, util_now());
        json_array_foreach(out, i, t) print_json(t);
        rc = 0;
    } else if (!strcmp(cmd, "revoke") && id) {
        int r = tokens_revoke(tokens, id, util_now());
        if (r == SCOUT_ENOTFOUND) fprintf(stderr, "scoutd token: no token with id %s\n", id);
        else if (r != SCOUT_OK) fprintf(stderr, "scoutd token: the token was not revoked (store error)\n");
        else {
            out = json_pack("{s:s, s:b}", "id", id, "revoked", 1);
            print_json(out);
            rc = 0;
        }
    } else {
        usage();
        rc = 2;
    }
done:
    json_decref(out);
    tokens_close(tokens);
    store_close(store);
    config_free(&cfg);
    return rc;
}
