/* cli.c — `scoutd token create|list|revoke [--data-dir DIR | --redis URL]`, and
 * `scoutd backup --out FILE | --out-dir DIR [--keep N]` / `scoutd restore --in FILE` with the
 * same store flags.
 * Opens the same store a running server uses (SQLite WAL lets both write); the server sees a
 * token change within a second (tokens.c reloads on a version bump). A backup runs beside
 * running servers; a restore goes into a store no server uses yet (backup.h). Output is JSON,
 * one object per line, so scripts can read it; the secret of a new token is printed once, on
 * stdout only. Exit status: 0 done, 2 refused (bad flags or file, a target that holds data),
 * 1 failed (the store). */
#include "config.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/tokens.h"
#include "backup.h"
#include "obs/log.h"
#include "store/store.h"
#include "util/util.h"

static void usage(void) {
    fprintf(stderr, "usage: scoutd token create [STORE] [--name NAME] [--scope admin|client] [--ttl-hours H]\n"
                    "       scoutd token list [STORE]\n"
                    "       scoutd token revoke ID [STORE]\n"
                    "STORE: --data-dir DIR (default ./data, or SCOUT_DATA_DIR) or --redis URL (or REDIS_HOST...)\n");
}

/* The same store scoutd would open: flags, then SCOUT_DATA_DIR / REDIS_* from the environment.
 * 0, or config_load's exit status. */
static int store_config(struct config *cfg, const char *dir, const char *redis) {
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
    return config_load(cfg, cargc, cargv);
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
    if (store_config(&cfg, dir, redis) != 0) return 2;
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

static void backup_usage(void) {
    fprintf(stderr, "usage: scoutd backup [STORE] --out FILE [--force]\n"
                    "       scoutd backup [STORE] --out-dir DIR [--keep N]\n"
                    "       scoutd restore [STORE] --in FILE [--force]\n"
                    "STORE: --data-dir DIR (default ./data, or SCOUT_DATA_DIR) or --redis URL (or REDIS_HOST...)\n"
                    "backup: a point-in-time copy of everything (tests, learned state, reward events, decisions,\n"
                    "  settings, token hashes) while servers keep serving; FILE is created with mode 0600 and an\n"
                    "  existing FILE is kept unless --force. --out-dir names the file by the time\n"
                    "  (scout-20250102T030405.123Z.backup), keeps the newest N such files (default 7, or\n"
                    "  SCOUT_BACKUP_KEEP) and deletes older ones. Every backup is recorded in the store, so\n"
                    "  every server reports it as scout_last_backup_timestamp_seconds.\n"
                    "restore: checks the whole FILE first and refuses a corrupt, truncated or newer one; writes\n"
                    "  into an empty store (no server running on it); --force clears Scout's data there first.\n");
}

/* argv[0] is "backup" or "restore". */
int cli_backup(int argc, char **argv) {
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"redis", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},      {"in", required_argument, NULL, 'i'},
        {"out-dir", required_argument, NULL, 'O'},  {"keep", required_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'f'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *redis = NULL, *file = NULL, *out_dir = NULL, *keep_arg = NULL, *name = argv[0];
    int restore = !strcmp(argv[0], "restore"), force = 0, keep = BACKUP_KEEP_DEFAULT, pruned = 0, c, rc;
    struct config cfg;
    struct store *store = NULL;
    struct backup_summary sum;
    char err[768] = "", fname[64] = "", path[4400];
    json_t *out;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': redis = optarg; break;
        case 'o':
        case 'i':
        case 'O':
            if ((c == 'i') != restore) {
                fprintf(stderr, "scoutd %s: %s\n", name, restore ? "use --in FILE" : "use --out FILE or --out-dir DIR");
                return 2;
            }
            if (c == 'O') out_dir = optarg;
            else file = optarg;
            break;
        case 'k':
            if (restore) {
                backup_usage();
                return 2;
            }
            keep_arg = optarg;
            break;
        case 'f': force = 1; break;
        default: backup_usage(); return 2;
        }
    }
    if ((!file && !out_dir) || (file && out_dir) || optind < argc || (keep_arg && !out_dir) || (out_dir && force)) {
        backup_usage();
        return 2;
    }
    if (out_dir) {
        long k;
        if (keep_arg && (!util_parse_index(keep_arg, BACKUP_KEEP_MAX, &k) || k < 1)) {
            fprintf(stderr, "scoutd backup: --keep must be an integer between 1 and %d\n", BACKUP_KEEP_MAX);
            return 2;
        }
        if (keep_arg) keep = (int)k;
        else if (backup_keep_from_env(&keep, err, sizeof err) != SCOUT_OK) {
            fprintf(stderr, "scoutd backup: %s\n", err);
            return 2;
        }
    }
    if (restore) {   /* the whole file is checked before the store is even opened */
        rc = backup_verify_file(file, &sum, err, sizeof err);
        if (rc != SCOUT_OK) {
            fprintf(stderr, "scoutd restore: %s\n", err);
            return rc == SCOUT_EINVAL ? 2 : 1;
        }
    }
    if (store_config(&cfg, dir, redis) != 0) return 2;
    if (!cfg.redis_host && !restore) {   /* a backup never makes an empty store where there was none */
        char db[4200];
        struct stat st;
        snprintf(db, sizeof db, "%s/scout.db", cfg.data_dir);
        if (stat(db, &st) != 0) {
            fprintf(stderr, "scoutd backup: no Scout database in %s\n", cfg.data_dir);
            config_free(&cfg);
            return 2;
        }
    }
    log_set_level("error");   /* the store's logs go to stderr; stdout carries the answer */
    rc = store_open_configured(&store, &cfg, err, sizeof err);
    if (rc != SCOUT_OK) {
        fprintf(stderr, "scoutd %s: %s\n", name, err);
        config_free(&cfg);
        return rc == SCOUT_EINVAL ? 2 : 1;
    }
    if (restore) {
        rc = backup_restore(store, file, force, &sum, err, sizeof err);
    } else if (out_dir) {
        rc = backup_to_dir(store, out_dir, keep, &sum, fname, sizeof fname, &pruned, err, sizeof err);
        snprintf(path, sizeof path, "%s/%s", out_dir, fname);
        file = path;
    } else {
        rc = backup_write(store, file, force, &sum, err, sizeof err);
    }
    store_close(store);
    config_free(&cfg);
    if (rc != SCOUT_OK) {
        fprintf(stderr, "scoutd %s: %s\n", name, err);
        return rc == SCOUT_EINVAL || rc == SCOUT_ECONFLICT ? 2 : 1;
    }
    if (!restore && !sum.recorded)   /* the file stands; the age alert will say if this goes on */
        fprintf(stderr, "scoutd backup: warning: the store did not take the record of this backup, so "
                        "scout_last_backup_timestamp_seconds does not show it\n");
    out = backup_summary_json(file, &sum, !restore);
    if (out_dir) json_object_set_new(out, "pruned", json_integer(pruned));
    print_json(out);
    json_decref(out);
    return 0;
}
