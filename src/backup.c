/* backup.c — a store's contents as one logical file, and back: `scoutd backup` / `restore`.
 *
 * The file is a gzip stream of JSON lines, independent of the store it came from, so a backup
 * of the embedded store restores into Redis (and back):
 *   {"type":"header","format":"scout-backup","version":1,"created":<epoch s>,"created_at":ISO,
 *    "source":"sqlite"|"redis"}
 *   {"type":"setting","key","value":<JSON text>}
 *   {"type":"token","id","name","scope","hash":<hex SHA-256 of the secret>,"created","expires",
 *    "last_used","revoked","rotated"}                      — never a secret: the store has none
 *   {"type":"test","id","definition":<JSON text>,"created","rollout","predictions",
 *    "last_prediction","stats":<JSON text>|null}
 *   then that test's records, each with "test":<its id>, before the next test:
 *   {"type":"arm","variant","predictions"}
 *   {"type":"snapshot","id":"ms-seq","state":<base64>,"t","format","trimmed":"ms-seq"|null}
 *                                                          — the state as of event "id"; the events
 *                                                          before "trimmed" are not all there (or are
 *                                                          history it was not folded from): a restore
 *                                                          keeps the state and folds only the events
 *                                                          after "id", into either store
 *   {"type":"reward","variant","reward","ts","context":<JSON text>|null,"request_id"|null,
 *    "id":"ms-seq"|null}                                   — in log order
 *   {"type":"decision","request_id","variant","propensity","explored","context","created",
 *    "expires","settle_at","aggregate","default_reward"|null,"rewards","reward_sum","settled",
 *    "model_version"}
 *   {"type":"assignment","user","variant","propensity","created"}
 *   {"type":"trailer","records":<lines before it>,"sha256":<hex of every byte before it>}
 * Numbers are written with 17 significant digits, so every double reads back bit for bit and
 * learned state folded from the restored events equals the state at backup time.
 *
 * Versioning: a reader refuses a file whose version is newer than BACKUP_VERSION, and reads
 * every older one; a new kind of record or field means a new version. A truncated file has no
 * trailer (or no gzip end); a changed byte breaks gzip's CRC or the SHA-256. The file is
 * written to a temp name created 0600 (O_EXCL), fsynced and then linked or renamed into place,
 * so it is never world-readable, not even for a moment, and never seen half-written.
 *
 * Every backup written is recorded in the store it came from (the setting BACKUP_SETTING:
 * time, size, file name), so every server on that store exports its age in /metrics even when
 * a CronJob in another pod made it. backup_to_dir names files by time, keeps the newest N and
 * lets one backup run per directory at a time (flock on a lock file there).
 *
 * A test export (backup.h) is one test's records in the same encoding, read back by the same
 * record parser: a test moved between installations is checked exactly as a restored one. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include <zlib.h>

#include "util/util.h"

#define CHUNK 65536
#define MAX_TEXT (1024u * 1024)   /* a definition, context or setting (the API caps bodies at 1 MiB) */

/* ---- writing ----------------------------------------------------------------------------- */

struct writer {
    gzFile gz;
    crypto_hash_sha256_state sha;
    struct backup_summary *sum;
    int failed;
};

static int write_line(struct writer *w, json_t *obj) {
    char *text;
    size_t len;
    int ok;
    if (!obj) return w->failed = 1, -1;
    text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(obj);
    if (!text) return w->failed = 1, -1;
    len = strlen(text);
    text[len] = '\n';   /* json_dumps' NUL becomes the line's end: the buffer holds len + 1 bytes */
    crypto_hash_sha256_update(&w->sha, (const unsigned char *)text, len + 1);
    ok = gzwrite(w->gz, text, (unsigned)(len + 1)) == (int)(len + 1);
    free(text);
    if (!ok) return w->failed = 1, -1;
    w->sum->records++;
    return 0;
}

static json_t *text_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *record_json(const struct store_record *r, struct backup_summary *sum) {
    json_t *o = NULL;
    switch (r->kind) {
    case STORE_REC_SETTING:
        sum->settings++;
        return json_pack("{s:s, s:s, s:s}", "type", "setting", "key", r->u.setting.key, "value", r->u.setting.json);
    case STORE_REC_TOKEN: {
        char hex[65];
        const struct store_token *tk = &r->u.token;
        sum->tokens++;
        sodium_bin2hex(hex, sizeof hex, tk->hash, sizeof tk->hash);
        o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:f, s:f, s:f, s:f, s:f}", "type", "token", "id", tk->id, "name",
                      tk->name, "scope", tk->scope, "hash", hex, "created", tk->created, "expires", tk->expires,
                      "last_used", tk->last_used, "revoked", tk->revoked, "rotated", tk->rotated);
        sodium_memzero(hex, sizeof hex);
        return o;
    }
    case STORE_REC_TEST:
        sum->tests++;
        return json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:f, s:o}", "type", "test", "id", r->test_id, "definition",
                         r->u.test.definition, "created", r->u.test.created, "rollout",
                         (json_int_t)r->u.test.rollout_variant, "predictions", (json_int_t)r->u.test.predictions,
                         "last_prediction", r->u.test.last_prediction, "stats", text_or_null(r->u.test.stats));
    case STORE_REC_ARM:
        return json_pack("{s:s, s:s, s:I, s:I}", "type", "arm", "test", r->test_id, "variant",
                         (json_int_t)r->u.arm.variant_id, "predictions", (json_int_t)r->u.arm.predictions);
    case STORE_REC_SNAPSHOT: {
        size_t b64len = sodium_base64_ENCODED_LEN(r->u.snapshot.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(b64len);
        if (!b64) return NULL;
        sodium_bin2base64(b64, b64len, r->u.snapshot.state, r->u.snapshot.len, sodium_base64_VARIANT_ORIGINAL);
        sum->snapshots++;
        if (r->u.snapshot.trimmed) sum->trimmed_snapshots++;
        o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:I, s:o}", "type", "snapshot", "test", r->test_id, "id",
                      r->u.snapshot.id, "state", b64, "t", r->u.snapshot.t, "format", (json_int_t)r->u.snapshot.format,
                      "trimmed", text_or_null(r->u.snapshot.trimmed));
        free(b64);
        return o;
    }
    case STORE_REC_REWARD:
        sum->rewards++;
        return json_pack("{s:s, s:s, s:I, s:f, s:f, s:o, s:o, s:o}", "type", "reward", "test", r->test_id, "variant",
                         (json_int_t)r->u.reward.variant_id, "reward", r->u.reward.reward, "ts", r->u.reward.ts,
                         "context", text_or_null(r->u.reward.context), "request_id",
                         text_or_null(r->u.reward.request_id), "id", text_or_null(r->u.reward.id));
    case STORE_REC_DECISION:
        sum->decisions++;
        return json_pack("{s:s, s:s, s:s, s:I, s:f, s:b, s:o, s:f, s:f, s:f, s:i, s:o, s:I, s:f, s:b, s:I}", "type",
                         "decision", "test", r->test_id, "request_id", r->u.decision.request_id, "variant",
                         (json_int_t)r->u.decision.variant_id, "propensity", r->u.decision.propensity, "explored",
                         r->u.decision.explored, "context", text_or_null(r->u.decision.context), "created",
                         r->u.decision.created, "expires", r->u.decision.expires, "settle_at",
                         r->u.decision.settle_at, "aggregate", r->u.decision.aggregate, "default_reward",
                         r->u.decision.has_default ? json_real(r->u.decision.default_reward) : json_null(),
                         "rewards", (json_int_t)r->u.decision.rewards, "reward_sum", r->u.decision.reward_sum,
                         "settled", r->u.decision.settled, "model_version", (json_int_t)r->u.decision.model_version);
    case STORE_REC_ASSIGNMENT:
        sum->assignments++;
        return json_pack("{s:s, s:s, s:s, s:I, s:f, s:f}", "type", "assignment", "test", r->test_id, "user",
                         r->u.assignment.user, "variant", (json_int_t)r->u.assignment.variant_id, "propensity",
                         r->u.assignment.propensity, "created", r->u.assignment.created);
    }
    return NULL;
}

json_t *backup_record_json(const struct store_record *r) {
    struct backup_summary uncounted;
    memset(&uncounted, 0, sizeof uncounted);
    return record_json(r, &uncounted);
}

static int emit_record(void *ud, const struct store_record *r) {
    struct writer *w = ud;
    /* The record of past backups describes this installation, not its data (backup.h). */
    if (r->kind == STORE_REC_SETTING && !strcmp(r->u.setting.key, BACKUP_SETTING)) return 0;
    return write_line(w, record_json(r, w->sum));
}

/* Records the backup at path in the store (the setting BACKUP_SETTING). */
static int note_save(struct store *s, const char *path, const struct backup_summary *sum) {
    const char *base = strrchr(path, '/');
    json_t *doc = json_pack("{s:f, s:I, s:s}", "created", sum->created, "size", (json_int_t)sum->size, "file",
                            base ? base + 1 : path);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    int rc = text ? store_put_setting_now(s, BACKUP_SETTING, text) : SCOUT_ENOMEM;
    json_decref(doc);
    free(text);
    return rc;
}

int backup_note_load(struct store *s, struct backup_note *out) {
    char *text = NULL;
    json_t *doc;
    int rc = store_get_setting(s, BACKUP_SETTING, &text);
    memset(out, 0, sizeof *out);
    if (rc != SCOUT_OK) return SCOUT_ESTORE;
    doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    /* A record this build cannot read counts as none: the alert on the age then fires. */
    if (json_is_number(json_object_get(doc, "created")) && json_is_integer(json_object_get(doc, "size"))) {
        const char *file = json_string_value(json_object_get(doc, "file"));
        out->created = json_number_value(json_object_get(doc, "created"));
        out->size = (long long)json_integer_value(json_object_get(doc, "size"));
        snprintf(out->file, sizeof out->file, "%s", file ? file : "");
    }
    json_decref(doc);
    return SCOUT_OK;
}

/* Makes the directory entry of a renamed file durable. */
static void sync_parent(const char *path) {
    char *copy = strdup(path);
    int fd;
    if (!copy) return;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int backup_write(struct store *s, const char *path, bool force, struct backup_summary *sum, char *err,
                 size_t errlen) {
    struct writer w = {0};
    struct stat st;
    char tmp[4200], suffix[17], iso[40];
    unsigned char raw[8], digest[crypto_hash_sha256_BYTES];
    int fd = -1, gzfd, rc = SCOUT_ERR, placed = 0;
    memset(sum, 0, sizeof *sum);
    if (!force && lstat(path, &st) == 0) {
        snprintf(err, errlen, "%s already exists; pass --force to replace it", path);
        return SCOUT_ECONFLICT;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(suffix, sizeof suffix, raw, sizeof raw);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, suffix) >= sizeof tmp) {
        snprintf(err, errlen, "the output path is too long");
        return SCOUT_EINVAL;
    }
    /* 0600 from the first instant: the umask can only take bits away. */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return SCOUT_ERR;
    }
    if (fchmod(fd, 0600) != 0 || (gzfd = dup(fd)) < 0 || !(w.gz = gzdopen(gzfd, "wb6"))) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    w.sum = sum;
    crypto_hash_sha256_init(&w.sha);
    sum->version = BACKUP_VERSION;
    snprintf(sum->source, sizeof sum->source, "%s", store_backend_name(s));
    sum->created = util_now();
    util_iso8601(sum->created, iso, sizeof iso);
    write_line(&w, json_pack("{s:s, s:s, s:i, s:f, s:s, s:s}", "type", "header", "format", BACKUP_FORMAT, "version",
                             BACKUP_VERSION, "created", sum->created, "created_at", iso, "source", sum->source));
    if (w.failed) goto write_failed;
    if ((rc = store_dump(s, emit_record, &w, err, errlen)) != SCOUT_OK) {
        if (w.failed) goto write_failed;
        goto fail;
    }
    rc = SCOUT_ERR;
    crypto_hash_sha256_final(&w.sha, digest);
    sodium_bin2hex(sum->sha256, sizeof sum->sha256, digest, sizeof digest);
    {   /* The trailer is not counted in records, nor hashed. */
        json_t *t = json_pack("{s:s, s:I, s:s}", "type", "trailer", "records", (json_int_t)sum->records, "sha256",
                              sum->sha256);
        char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
        json_decref(t);
        if (!text || gzputs(w.gz, text) < 0 || gzputc(w.gz, '\n') < 0) {
            free(text);
            goto write_failed;
        }
        free(text);
    }
    {
        int zrc = gzclose(w.gz);
        w.gz = NULL;
        if (zrc != Z_OK) goto write_failed;
    }
    if (fsync(fd) != 0) goto write_failed;
    close(fd);
    fd = -1;
    /* Without --force, link() never replaces a file that appeared meanwhile. */
    if (force) placed = rename(tmp, path) == 0;
    else placed = link(tmp, path) == 0 && unlink(tmp) == 0;
    if (!placed) {
        snprintf(err, errlen, "cannot move the backup into place at %s: %s", path, strerror(errno));
        rc = errno == EEXIST ? SCOUT_ECONFLICT : SCOUT_ERR;
        goto fail;
    }
    sync_parent(path);
    if (stat(path, &st) == 0) sum->size = (long long)st.st_size;
    sum->recorded = note_save(s, path, sum) == SCOUT_OK;
    return SCOUT_OK;
write_failed:
    snprintf(err, errlen, "writing %s failed: %s", tmp, errno ? strerror(errno) : "out of memory");
    rc = SCOUT_ERR;
fail:
    if (w.gz) gzclose(w.gz);
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

json_t *backup_summary_json(const char *file, const struct backup_summary *sum, bool written) {
    char iso[40];
    json_t *out;
    util_iso8601(sum->created, iso, sizeof iso);
    out = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "file", file, "version",
                    sum->version, "source", sum->source, "created", iso, "records", (json_int_t)sum->records,
                    "tests", (json_int_t)sum->tests, "rewards", (json_int_t)sum->rewards, "decisions",
                    (json_int_t)sum->decisions, "assignments", (json_int_t)sum->assignments, "tokens",
                    (json_int_t)sum->tokens, "settings", (json_int_t)sum->settings, "snapshots",
                    (json_int_t)sum->snapshots, "sha256", sum->sha256);
    if (out && written) {
        json_object_set_new(out, "size", json_integer((json_int_t)sum->size));
        json_object_set_new(out, "recorded", json_boolean(sum->recorded));
    }
    return out;
}

/* ---- backups into a directory ------------------------------------------------------------ */

#define DIR_PREFIX "scout-"
#define DIR_SUFFIX "Z.backup"
#define DIR_NAME_LEN 33        /* scout-YYYYMMDDTHHMMSS.mmmZ.backup */
#define DIR_LOCK ".scout-backup.lock"

/* Whether name is one backup_to_dir made (only those are ever pruned). */
static int is_dir_backup(const char *name) {
    static const char shape[] = "scout-DDDDDDDDTDDDDDD.DDDZ.backup";
    if (strlen(name) != DIR_NAME_LEN) return 0;
    for (int i = 0; i < DIR_NAME_LEN; i++)
        if (shape[i] == 'D' ? (name[i] < '0' || name[i] > '9') : name[i] != shape[i]) return 0;
    return 1;
}

static int name_order(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the oldest backups of dir beyond keep; how many went. */
static int prune_dir(const char *dir, int keep) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4400];
    size_t n = 0, cap = 0;
    int pruned = 0;
    if (!d) return 0;
    while ((e = readdir(d))) {
        if (!is_dir_backup(e->d_name)) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **g = realloc(names, ncap * sizeof *names);
            if (!g) goto out;   /* without the whole list the oldest are unknown: delete nothing */
            names = g;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name))) goto out;
        n++;
    }
    if (n > 0) qsort(names, n, sizeof *names, name_order);
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) == 0) pruned++;
    }
out:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return pruned;
}

int backup_to_dir(struct store *s, const char *dir, int keep, struct backup_summary *sum, char *name, size_t namelen,
                  int *pruned, char *err, size_t errlen) {
    char path[4400];
    int lock = -1, rc = SCOUT_ERR;
    memset(sum, 0, sizeof *sum);
    *pruned = 0;
    if (keep < 1 || keep > BACKUP_KEEP_MAX) {
        snprintf(err, errlen, "keep must be between 1 and %d", BACKUP_KEEP_MAX);
        return SCOUT_EINVAL;
    }
    if (strlen(dir) + DIR_NAME_LEN + 40 >= sizeof path) {
        snprintf(err, errlen, "the backup directory's path is too long");
        return SCOUT_EINVAL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the backup directory %s: %s", dir, strerror(errno));
        return SCOUT_ERR;
    }
    snprintf(path, sizeof path, "%s/" DIR_LOCK, dir);
    if ((lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return SCOUT_ERR;
    }
    /* flock belongs to the open file, so a second backup is refused in this process too. */
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, errno == EWOULDBLOCK ? "a backup into %s is already running; try again when it is done"
                                                   : "cannot lock %s", dir);
        rc = errno == EWOULDBLOCK ? SCOUT_ECONFLICT : SCOUT_ERR;
        goto done;
    }
    for (int attempt = 0; attempt < 5; attempt++) {   /* two backups within one millisecond */
        double now = util_now();
        time_t sec = (time_t)now;
        struct tm tm;
        char stamp[32];
        gmtime_r(&sec, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
        snprintf(name, namelen, DIR_PREFIX "%s.%03dZ.backup", stamp, (int)((now - (double)sec) * 1000.0) % 1000);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = backup_write(s, path, false, sum, err, errlen);
        if (rc != SCOUT_ECONFLICT) break;
        usleep(2000);
    }
    if (rc == SCOUT_OK) *pruned = prune_dir(dir, keep);
done:
    close(lock);   /* releases the lock */
    return rc;
}

int backup_keep_from_env(int *keep, char *err, size_t errlen) {
    const char *v = getenv("SCOUT_BACKUP_KEEP");
    long n;
    *keep = BACKUP_KEEP_DEFAULT;
    if (!v || !*v) return SCOUT_OK;
    if (!util_parse_index(v, BACKUP_KEEP_MAX, &n) || n < 1) {
        snprintf(err, errlen, "SCOUT_BACKUP_KEEP must be an integer between 1 and %d", BACKUP_KEEP_MAX);
        return SCOUT_EINVAL;
    }
    *keep = (int)n;
    return SCOUT_OK;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Reads a backup a record at a time, from a file descriptor or from memory, checking as it
 * goes; the SHA-256 and the record count are checked when the trailer comes. */
struct reader {
    int fd;                          /* -1: read from mem */
    const unsigned char *mem;
    size_t memlen, mempos;
    bool compressed;
    z_stream z;
    int z_ready, z_end, in_eof;
    unsigned char *in, *out;
    size_t out_len, out_pos;
    char *line;                      /* the current line, NUL-terminated */
    size_t len, cap;
    long lineno;
    crypto_hash_sha256_state sha;
    int phase;                       /* 0: before the header, 1: records, 2: after the trailer */
    char test[SCOUT_ID_LEN + 1];     /* the test whose records follow */
    json_t *doc;                     /* the current record (its strings are borrowed by the caller) */
    unsigned char *state;            /* the current snapshot's bytes */
    struct backup_summary *sum;
    char *err;
    size_t errlen;
    int failed;                      /* an error was reported in err */
    const char *where;               /* a test export's part being read, or NULL: a backup's line */
};

static int fail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct reader *r, const char *fmt, ...) {
    va_list ap;
    if (!r->failed) {
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
        /* messages quote the file's own bytes: keep them one printable line */
        for (char *c = r->err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    r->failed = 1;
    return -1;
}

static int reader_init(struct reader *r, int fd, const void *mem, size_t memlen, bool compressed,
                       struct backup_summary *sum, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->mem = mem;
    r->memlen = memlen;
    r->compressed = compressed;
    r->sum = sum;
    r->err = err;
    r->errlen = errlen;
    memset(sum, 0, sizeof *sum);
    crypto_hash_sha256_init(&r->sha);
    if (!(r->in = malloc(CHUNK)) || !(r->out = malloc(CHUNK))) return SCOUT_ENOMEM;
    if (compressed) {
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) return SCOUT_ENOMEM;   /* gzip only */
        r->z_ready = 1;
    }
    return SCOUT_OK;
}

static void reader_free(struct reader *r) {
    if (r->z_ready) inflateEnd(&r->z);
    free(r->in);
    free(r->out);
    free(r->line);
    json_decref(r->doc);
    free(r->state);
}

/* Raw bytes of the file into buf: how many, 0 at its end, -1 on a read error. */
static ssize_t read_raw(struct reader *r, unsigned char *buf, size_t n) {
    if (r->fd < 0) {
        size_t k = r->memlen - r->mempos < n ? r->memlen - r->mempos : n;
        memcpy(buf, r->mem + r->mempos, k);
        r->mempos += k;
        return (ssize_t)k;
    }
    for (;;) {
        ssize_t k = read(r->fd, buf, n);
        if (k >= 0 || errno != EINTR) return k;
    }
}

/* Refills the output buffer with decompressed bytes: 1, 0 at the end of the data, -1. */
static int refill(struct reader *r) {
    r->out_pos = r->out_len = 0;
    if (!r->compressed) {
        ssize_t k = read_raw(r, r->out, CHUNK);
        if (k < 0) return fail(r, "cannot read the backup: %s", strerror(errno));
        r->out_len = (size_t)k;
        return k > 0;
    }
    while (r->out_len == 0) {
        if (r->z_end) {   /* the gzip stream ended: nothing may follow it */
            if (r->z.avail_in > 0) return fail(r, "the backup is corrupt: data follows the end of its gzip stream");
            ssize_t k = read_raw(r, r->in, 1);
            if (k < 0) return fail(r, "cannot read the backup: %s", strerror(errno));
            if (k > 0) return fail(r, "the backup is corrupt: data follows the end of its gzip stream");
            return 0;
        }
        if (r->z.avail_in == 0 && !r->in_eof) {
            ssize_t k = read_raw(r, r->in, CHUNK);
            if (k < 0) return fail(r, "cannot read the backup: %s", strerror(errno));
            if (k == 0) r->in_eof = 1;
            r->z.next_in = r->in;
            r->z.avail_in = (uInt)k;
        }
        if (r->z.avail_in == 0 && r->in_eof) {
            if (r->z.total_in == 0) return fail(r, "the backup is empty");
            return fail(r, "the backup is truncated: its gzip stream ends early");
        }
        r->z.next_out = r->out;
        r->z.avail_out = CHUNK;
        int zrc = inflate(&r->z, Z_NO_FLUSH);
        r->out_len = CHUNK - r->z.avail_out;
        if (zrc == Z_STREAM_END) r->z_end = 1;
        else if (zrc == Z_DATA_ERROR || zrc == Z_NEED_DICT) {
            if (r->z.total_out == 0 && r->z.msg && !strcmp(r->z.msg, "incorrect header check"))
                return fail(r, "not a Scout backup (not gzip data)");
            return fail(r, "the backup is corrupt: %s", r->z.msg ? r->z.msg : "bad compressed data");
        } else if (zrc == Z_MEM_ERROR) {
            return fail(r, "out of memory");
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            return fail(r, "the backup is corrupt (zlib error %d)", zrc);
        }
    }
    return 1;
}

/* The next line into r->line (without its newline): 1, 0 at the end of the data, -1. */
static int read_line(struct reader *r) {
    r->len = 0;
    for (;;) {
        if (r->out_pos == r->out_len) {
            int got = refill(r);
            if (got < 0) return -1;
            if (got == 0) {
                if (r->len) return fail(r, "the backup is truncated: its last line is cut short");
                return 0;
            }
        }
        unsigned char *start = r->out + r->out_pos, *nl = memchr(start, '\n', r->out_len - r->out_pos);
        size_t take = nl ? (size_t)(nl - start) : r->out_len - r->out_pos;
        if (r->len + take + 1 > BACKUP_MAX_LINE)
            return fail(r, "the backup is corrupt: line %ld is longer than %u bytes", r->lineno + 1, BACKUP_MAX_LINE);
        if (r->len + take + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + take + 1) cap *= 2;
            char *grown = realloc(r->line, cap);
            if (!grown) return fail(r, "out of memory");
            r->line = grown;
            r->cap = cap;
        }
        memcpy(r->line + r->len, start, take);
        r->len += take;
        r->out_pos += take + (nl ? 1 : 0);
        if (nl) {
            r->line[r->len] = '\0';
            r->lineno++;
            return 1;
        }
    }
}

/* ---- fields of a record ---- */

static int bad(struct reader *r, const char *type, const char *field, const char *why) {
    if (r->where) return fail(r, "the export's %s (a %s record): \"%s\" %s", r->where, type, field, why);
    return fail(r, "the backup is corrupt: line %ld (%s): \"%s\" %s", r->lineno, type, field, why);
}

/* A string field: required, or NULL for null when nullable; at most max bytes. */
static int field_str(struct reader *r, const char *type, json_t *o, const char *name, int nullable, size_t max,
                     const char **out) {
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (nullable && (!v || json_is_null(v))) return 0;
    if (!json_is_string(v)) return bad(r, type, name, nullable ? "must be a string or null" : "must be a string");
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
        return bad(r, type, name, "is too long or holds a NUL");
    *out = json_string_value(v);
    return 0;
}

static int field_num(struct reader *r, const char *type, json_t *o, const char *name, double *out) {
    json_t *v = json_object_get(o, name);
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return bad(r, type, name, "must be a finite number");
    *out = json_number_value(v);
    return 0;
}

static int field_int(struct reader *r, const char *type, json_t *o, const char *name, json_int_t lo, json_int_t hi,
                     json_int_t *out) {
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(r, type, name, "must be an integer in range");
    *out = json_integer_value(v);
    return 0;
}

static int field_bool(struct reader *r, const char *type, json_t *o, const char *name, int *out) {
    json_t *v = json_object_get(o, name);
    if (!json_is_boolean(v)) return bad(r, type, name, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

/* JSON text held in a string field (a definition, a setting, a context): it must parse. */
static int check_json_text(struct reader *r, const char *type, const char *name, const char *text) {
    json_t *v;
    if (!text) return 0;
    if (!(v = json_loads(text, JSON_DECODE_ANY, NULL))) return bad(r, type, name, "is not JSON text");
    json_decref(v);
    return 0;
}

/* A test id as the server makes them (a UUID): letters, digits and dashes only, so it is safe
 * inside a Redis hash tag. */
static int check_id(struct reader *r, const char *type, const char *name, const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > SCOUT_ID_LEN) return bad(r, type, name, "is not a test id");
    for (size_t i = 0; i < n; i++)
        if (!(id[i] == '-' || (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
              (id[i] >= 'A' && id[i] <= 'Z')))
            return bad(r, type, name, "is not a test id");
    return 0;
}

/* A stream id "ms-seq". */
static int check_stream_id(struct reader *r, const char *type, const char *name, const char *id) {
    unsigned long long ms, seq;
    int end = 0;
    if (!id) return 0;
    if (sscanf(id, "%20llu-%20llu%n", &ms, &seq, &end) != 2 || (size_t)end != strlen(id) || id[0] == '-' ||
        strchr(id, '+') || strchr(id, ' '))
        return bad(r, type, name, "is not a stream id (ms-seq)");
    return 0;
}

static int parse_header(struct reader *r, json_t *o) {
    const char *format = NULL, *source = NULL;
    json_int_t version;
    double created;
    if (field_str(r, "header", o, "format", 0, 64, &format) < 0) return -1;
    if (strcmp(format, BACKUP_FORMAT)) return fail(r, "not a Scout backup (format \"%.64s\")", format);
    if (!json_is_integer(json_object_get(o, "version")))
        return bad(r, "header", "version", "must be an integer");
    version = json_integer_value(json_object_get(o, "version"));
    if (version > BACKUP_VERSION)
        return fail(r, "the backup has format version %lld, newer than this scoutd reads (%d): restore it with a newer "
                       "scoutd", (long long)version, BACKUP_VERSION);
    if (version < 1) return bad(r, "header", "version", "must be at least 1");
    if (field_num(r, "header", o, "created", &created) < 0 || field_str(r, "header", o, "source", 0, 15, &source) < 0)
        return -1;
    r->sum->version = (int)version;
    r->sum->created = created;
    snprintf(r->sum->source, sizeof r->sum->source, "%s", source);
    return 0;
}

/* Fills rec from the record object o of the given type (o stays alive in r->doc). */
static int parse_record(struct reader *r, const char *type, json_t *o, struct store_record *rec) {
    json_int_t i1, i2;
    const char *s1 = NULL;
    memset(rec, 0, sizeof *rec);
    if (!strcmp(type, "setting")) {
        rec->kind = STORE_REC_SETTING;
        if (field_str(r, type, o, "key", 0, 128, &rec->u.setting.key) < 0 ||
            field_str(r, type, o, "value", 0, MAX_TEXT, &rec->u.setting.json) < 0 ||
            check_json_text(r, type, "value", rec->u.setting.json) < 0)
            return -1;
        if (!rec->u.setting.key[0]) return bad(r, type, "key", "is empty");
        r->sum->settings++;
        return 0;
    }
    if (!strcmp(type, "token")) {
        struct store_token *tk = &rec->u.token;
        const char *id, *name, *hex;
        size_t got = 0;
        rec->kind = STORE_REC_TOKEN;
        if (field_str(r, type, o, "id", 0, sizeof tk->id - 1, &id) < 0 ||
            field_str(r, type, o, "name", 0, sizeof tk->name - 1, &name) < 0 ||
            field_int(r, type, o, "scope", 0, 16, &i1) < 0 || field_str(r, type, o, "hash", 0, 64, &hex) < 0 ||
            field_num(r, type, o, "created", &tk->created) < 0 || field_num(r, type, o, "expires", &tk->expires) < 0 ||
            field_num(r, type, o, "last_used", &tk->last_used) < 0 ||
            field_num(r, type, o, "revoked", &tk->revoked) < 0 || field_num(r, type, o, "rotated", &tk->rotated) < 0)
            return -1;
        if (!id[0]) return bad(r, type, "id", "is empty");
        if (strlen(hex) != 64 || sodium_hex2bin(tk->hash, sizeof tk->hash, hex, 64, NULL, &got, NULL) != 0 ||
            got != sizeof tk->hash)
            return bad(r, type, "hash", "must be 64 hex digits");
        snprintf(tk->id, sizeof tk->id, "%s", id);
        snprintf(tk->name, sizeof tk->name, "%s", name);
        tk->scope = (int)i1;
        r->sum->tokens++;
        return 0;
    }
    if (!strcmp(type, "test")) {
        rec->kind = STORE_REC_TEST;
        if (field_str(r, type, o, "id", 0, SCOUT_ID_LEN, &rec->test_id) < 0 ||
            check_id(r, type, "id", rec->test_id) < 0 ||
            field_str(r, type, o, "definition", 0, MAX_TEXT, &rec->u.test.definition) < 0 ||
            check_json_text(r, type, "definition", rec->u.test.definition) < 0 ||
            field_num(r, type, o, "created", &rec->u.test.created) < 0 ||
            field_int(r, type, o, "rollout", -1, SCOUT_MAX_VARIANT_ID, &i1) < 0 ||
            field_int(r, type, o, "predictions", 0, INT64_MAX, &i2) < 0 ||
            field_num(r, type, o, "last_prediction", &rec->u.test.last_prediction) < 0 ||
            field_str(r, type, o, "stats", 1, MAX_TEXT, &rec->u.test.stats) < 0 ||
            check_json_text(r, type, "stats", rec->u.test.stats) < 0)
            return -1;
        rec->u.test.rollout_variant = (long)i1;
        rec->u.test.predictions = (uint64_t)i2;
        snprintf(r->test, sizeof r->test, "%s", rec->test_id);
        r->sum->tests++;
        return 0;
    }
    /* The rest belong to the test before them. */
    if (field_str(r, type, o, "test", 0, SCOUT_ID_LEN, &rec->test_id) < 0) return -1;
    if (!r->test[0] || strcmp(rec->test_id, r->test))
        return bad(r, type, "test", "does not name the test whose records these are");
    if (!strcmp(type, "arm")) {
        rec->kind = STORE_REC_ARM;
        if (field_int(r, type, o, "variant", 0, SCOUT_MAX_VARIANT_ID, &i1) < 0 ||
            field_int(r, type, o, "predictions", 0, INT64_MAX, &i2) < 0)
            return -1;
        rec->u.arm.variant_id = (long)i1;
        rec->u.arm.predictions = (uint64_t)i2;
        return 0;
    }
    if (!strcmp(type, "snapshot")) {
        const char *b64;
        size_t b64len, max, got = 0;
        rec->kind = STORE_REC_SNAPSHOT;
        if (field_str(r, type, o, "id", 0, 48, &rec->u.snapshot.id) < 0 ||
            check_stream_id(r, type, "id", rec->u.snapshot.id) < 0 ||
            field_str(r, type, o, "state", 0, BACKUP_MAX_LINE, &b64) < 0 ||
            field_num(r, type, o, "t", &rec->u.snapshot.t) < 0 ||
            field_int(r, type, o, "format", 0, 1000000, &i1) < 0 ||
            field_str(r, type, o, "trimmed", 1, 48, &rec->u.snapshot.trimmed) < 0 ||
            check_stream_id(r, type, "trimmed", rec->u.snapshot.trimmed) < 0)
            return -1;
        b64len = strlen(b64);
        max = b64len / 4 * 3 + 3;
        free(r->state);
        if (!(r->state = malloc(max))) return fail(r, "out of memory");
        if (sodium_base642bin(r->state, max, b64, b64len, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return bad(r, type, "state", "is not base64");
        rec->u.snapshot.state = r->state;
        rec->u.snapshot.len = got;
        rec->u.snapshot.format = (long)i1;
        r->sum->snapshots++;
        if (rec->u.snapshot.trimmed) r->sum->trimmed_snapshots++;
        return 0;
    }
    if (!strcmp(type, "reward")) {
        rec->kind = STORE_REC_REWARD;
        if (field_int(r, type, o, "variant", 0, SCOUT_MAX_VARIANT_ID, &i1) < 0 ||
            field_num(r, type, o, "reward", &rec->u.reward.reward) < 0 ||
            field_num(r, type, o, "ts", &rec->u.reward.ts) < 0 ||
            field_str(r, type, o, "context", 1, MAX_TEXT, &rec->u.reward.context) < 0 ||
            field_str(r, type, o, "request_id", 1, SCOUT_MAX_REQUEST_ID, &rec->u.reward.request_id) < 0 ||
            field_str(r, type, o, "id", 1, 48, &rec->u.reward.id) < 0 ||
            check_stream_id(r, type, "id", rec->u.reward.id) < 0)
            return -1;
        if (fabs(rec->u.reward.reward) > SCOUT_MAX_REWARD) return bad(r, type, "reward", "is out of range");
        rec->u.reward.variant_id = (long)i1;
        r->sum->rewards++;
        return 0;
    }
    if (!strcmp(type, "decision")) {
        json_t *dr = json_object_get(o, "default_reward");
        rec->kind = STORE_REC_DECISION;
        if (field_str(r, type, o, "request_id", 0, SCOUT_MAX_REQUEST_ID, &rec->u.decision.request_id) < 0 ||
            field_int(r, type, o, "variant", 0, SCOUT_MAX_VARIANT_ID, &i1) < 0 ||
            field_num(r, type, o, "propensity", &rec->u.decision.propensity) < 0 ||
            field_bool(r, type, o, "explored", &rec->u.decision.explored) < 0 ||
            field_str(r, type, o, "context", 1, MAX_TEXT, &rec->u.decision.context) < 0 ||
            field_num(r, type, o, "created", &rec->u.decision.created) < 0 ||
            field_num(r, type, o, "expires", &rec->u.decision.expires) < 0 ||
            field_num(r, type, o, "settle_at", &rec->u.decision.settle_at) < 0 ||
            field_int(r, type, o, "aggregate", STORE_AGG_ALL, STORE_AGG_SUM, &i2) < 0 ||
            field_num(r, type, o, "reward_sum", &rec->u.decision.reward_sum) < 0 ||
            field_bool(r, type, o, "settled", &rec->u.decision.settled) < 0)
            return -1;
        rec->u.decision.variant_id = (long)i1;
        rec->u.decision.aggregate = (int)i2;
        if (field_int(r, type, o, "rewards", 0, INT32_MAX, &i1) < 0 ||
            field_int(r, type, o, "model_version", 0, INT64_MAX, &i2) < 0)
            return -1;
        rec->u.decision.rewards = (long)i1;
        rec->u.decision.model_version = (uint64_t)i2;
        if (dr && !json_is_null(dr)) {
            if (field_num(r, type, o, "default_reward", &rec->u.decision.default_reward) < 0) return -1;
            rec->u.decision.has_default = 1;
        }
        if (!rec->u.decision.request_id[0]) return bad(r, type, "request_id", "is empty");
        r->sum->decisions++;
        return 0;
    }
    if (!strcmp(type, "assignment")) {
        rec->kind = STORE_REC_ASSIGNMENT;
        if (field_str(r, type, o, "user", 0, SCOUT_MAX_STICKY_USER, &s1) < 0 ||
            field_int(r, type, o, "variant", 0, SCOUT_MAX_VARIANT_ID, &i1) < 0 ||
            field_num(r, type, o, "propensity", &rec->u.assignment.propensity) < 0 ||
            field_num(r, type, o, "created", &rec->u.assignment.created) < 0)
            return -1;
        rec->u.assignment.user = s1;
        rec->u.assignment.variant_id = (long)i1;
        r->sum->assignments++;
        return 0;
    }
    return fail(r, "the backup is corrupt: line %ld has an unknown record type \"%.32s\"", r->lineno, type);
}

/* Checks the trailer against what was read: the count and the SHA-256 of every line before. */
static int check_trailer(struct reader *r, json_t *o) {
    unsigned char digest[crypto_hash_sha256_BYTES];
    json_int_t records;
    const char *sha;
    if (field_int(r, "trailer", o, "records", 0, INT64_MAX, &records) < 0 ||
        field_str(r, "trailer", o, "sha256", 0, 64, &sha) < 0)
        return -1;
    crypto_hash_sha256_final(&r->sha, digest);
    sodium_bin2hex(r->sum->sha256, sizeof r->sum->sha256, digest, sizeof digest);
    if (records != r->sum->records)
        return fail(r, "the backup is corrupt: its trailer counts %lld records, the file holds %ld",
                    (long long)records, r->sum->records);
    if (strcmp(sha, r->sum->sha256)) return fail(r, "the backup is corrupt: its SHA-256 does not match its contents");
    return 0;
}

/* The next record: 1 with rec filled (borrowing from the reader until the next call), 0 after
 * the trailer was checked and nothing follows it, -1 with a sentence in err. */
static int next_record(struct reader *r, struct store_record *rec) {
    for (;;) {
        json_t *o, *t;
        const char *type;
        json_error_t jerr;
        int got;
        if (r->failed) return -1;
        json_decref(r->doc);
        r->doc = NULL;
        if ((got = read_line(r)) < 0) return -1;
        if (got == 0) {
            if (r->phase == 2) return 0;
            if (r->phase == 0) return fail(r, "the backup is empty or not a Scout backup");
            return fail(r, "the backup is truncated: it ends before its trailer");
        }
        if (r->phase == 2) return fail(r, "the backup is corrupt: data follows its trailer");
        if (!(o = json_loadb(r->line, r->len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(o)) {
            json_decref(o);
            if (r->phase == 0) return fail(r, "not a Scout backup (its first line is not a JSON object)");
            return fail(r, "the backup is corrupt: line %ld is not a JSON object", r->lineno);
        }
        r->doc = o;
        t = json_object_get(o, "type");
        type = json_is_string(t) ? json_string_value(t) : "";
        if (!strcmp(type, "trailer")) {
            if (r->phase != 1) return fail(r, "not a Scout backup (no header)");
            if (check_trailer(r, o) < 0) return -1;
            r->phase = 2;
            continue;   /* only the end of the data may follow */
        }
        crypto_hash_sha256_update(&r->sha, (const unsigned char *)r->line, r->len);
        crypto_hash_sha256_update(&r->sha, (const unsigned char *)"\n", 1);
        r->sum->records++;
        if (r->phase == 0) {
            if (strcmp(type, "header")) return fail(r, "not a Scout backup (its first line is not a header)");
            if (parse_header(r, o) < 0) return -1;
            r->phase = 1;
            continue;
        }
        if (!strcmp(type, "header")) return fail(r, "the backup is corrupt: a second header on line %ld", r->lineno);
        if (parse_record(r, type, o, rec) < 0) return -1;
        return 1;
    }
}

static int verify(struct reader *r) {
    struct store_record rec;
    int got;
    while ((got = next_record(r, &rec)) > 0) {
    }
    return got == 0 ? SCOUT_OK : SCOUT_EINVAL;
}

int backup_verify_mem(const void *data, size_t len, bool compressed, struct backup_summary *sum, char *err,
                      size_t errlen) {
    struct reader r;
    int rc = reader_init(&r, -1, data, len, compressed, sum, err, errlen);
    if (rc == SCOUT_OK) rc = verify(&r);
    else snprintf(err, errlen, "out of memory");
    reader_free(&r);
    return rc;
}

static int open_backup(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return fd;
}

int backup_verify_file(const char *path, struct backup_summary *sum, char *err, size_t errlen) {
    struct reader r;
    int rc, fd = open_backup(path, err, errlen);
    if (fd < 0) return SCOUT_ERR;
    rc = reader_init(&r, fd, NULL, 0, true, sum, err, errlen);
    if (rc == SCOUT_OK) rc = verify(&r);
    else snprintf(err, errlen, "out of memory");
    reader_free(&r);
    close(fd);
    return rc;
}

static int pull_record(void *ud, struct store_record *rec) {
    return next_record(ud, rec);
}

int backup_restore(struct store *s, const char *path, bool force, struct backup_summary *sum, char *err,
                   size_t errlen) {
    struct reader r;
    char store_err[512] = "";
    int rc, fd = open_backup(path, err, errlen);
    if (fd < 0) return SCOUT_ERR;
    rc = reader_init(&r, fd, NULL, 0, true, sum, err, errlen);
    if (rc != SCOUT_OK) {
        snprintf(err, errlen, "out of memory");
    } else {
        rc = store_restore(s, force, pull_record, &r, store_err, sizeof store_err);
        /* The reader's sentence when the file failed, else the store's. */
        if (r.failed) {
            size_t n = strlen(err);
            if (store_err[0]) snprintf(err + n, errlen - n, "%s", strstr(store_err, " (") ? strstr(store_err, " (") : "");
            rc = SCOUT_EINVAL;
        } else if (rc != SCOUT_OK) {
            snprintf(err, errlen, "%s", store_err[0] ? store_err : "the restore failed");
        }
    }
    reader_free(&r);
    close(fd);
    return rc;
}

/* ---- test exports ------------------------------------------------------------------------ */

json_t *test_export_begin(const struct store_record *test, const char *source, const char *name, uint64_t updates,
                          bool events) {
    char iso[40];
    json_t *doc, *rec = backup_record_json(test);
    util_iso8601(util_now(), iso, sizeof iso);
    doc = rec ? json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:I, s:b, s:o, s:[]}", "format", TEST_EXPORT_FORMAT,
                          "version", TEST_EXPORT_VERSION, "exported_at", iso, "source", source, "model_id",
                          test->test_id, "name", name, "updates", (json_int_t)updates, "events_included", events,
                          "test", rec, "arms")
              : NULL;
    if (doc && events && json_object_set_new(doc, "events", json_array()) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

int test_export_add(json_t *doc, const struct store_record *r) {
    json_t *list = NULL, *rec;
    if (r->kind == STORE_REC_ARM) list = json_object_get(doc, "arms");
    else if (r->kind == STORE_REC_REWARD) list = json_object_get(doc, "events");
    else if (r->kind != STORE_REC_SNAPSHOT) return SCOUT_EINVAL;
    if (r->kind != STORE_REC_SNAPSHOT && !json_is_array(list)) return SCOUT_EINVAL;
    if (!(rec = backup_record_json(r))) return SCOUT_ENOMEM;
    if (list) return json_array_append_new(list, rec) == 0 ? SCOUT_OK : SCOUT_ENOMEM;
    return json_object_set_new(doc, "snapshot", rec) == 0 ? SCOUT_OK : SCOUT_ENOMEM;
}

void test_export_free(struct test_export *x) {
    json_decref(x->doc);
    free(x->recs);
    free(x->state);
    memset(x, 0, sizeof *x);
}

/* Parses one record object of an export, of the expected type, into rec. */
static int export_record(struct reader *r, const char *where, json_t *o, const char *type, struct store_record *rec) {
    json_t *t = json_object_get(o, "type");
    r->where = where;
    if (!json_is_object(o)) return fail(r, "the export's %s must be a JSON object (a %s record)", where, type);
    if (!json_is_string(t) || strcmp(json_string_value(t), type))
        return fail(r, "the export's %s must be a record of type \"%s\"", where, type);
    return parse_record(r, type, o, rec);
}

int test_export_parse(const char *text, size_t len, struct test_export *x, int *status, char *err, size_t errlen) {
    struct reader r;
    struct backup_summary uncounted;
    json_error_t jerr;
    json_t *doc, *v, *arms, *events;
    size_t narms, nevents, k = 0;
    memset(x, 0, sizeof *x);
    memset(&r, 0, sizeof r);
    r.sum = &uncounted;
    r.err = err;
    r.errlen = errlen;
    memset(&uncounted, 0, sizeof uncounted);
    *status = 422;
    if (!(doc = x->doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        *status = 400;
        /* jansson's text may quote the input, newlines and all: the position says enough */
        snprintf(err, errlen, "the body is not valid JSON (line %d, column %d)", jerr.line, jerr.column);
        return SCOUT_EINVAL;
    }
    v = json_object_get(doc, "format");
    if (!json_is_object(doc) || !json_is_string(v) || strcmp(json_string_value(v), TEST_EXPORT_FORMAT)) {
        snprintf(err, errlen, "not a Scout test export (\"format\" must be \"%s\")", TEST_EXPORT_FORMAT);
        return SCOUT_EINVAL;
    }
    v = json_object_get(doc, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        snprintf(err, errlen, "the export's \"version\" must be an integer of at least 1");
        return SCOUT_EINVAL;
    }
    if (json_integer_value(v) > TEST_EXPORT_VERSION) {
        snprintf(err, errlen, "the export has format version %lld, a newer format than this scoutd reads (%d): import "
                              "it with a newer scoutd", (long long)json_integer_value(v), TEST_EXPORT_VERSION);
        return SCOUT_EINVAL;
    }
    x->version = (int)json_integer_value(v);
    v = json_object_get(doc, "source");
    snprintf(x->source, sizeof x->source, "%s", json_is_string(v) ? json_string_value(v) : "");
    arms = json_object_get(doc, "arms");
    events = json_object_get(doc, "events");
    if (arms && !json_is_array(arms)) {
        snprintf(err, errlen, "the export's \"arms\" must be a list of arm records");
        return SCOUT_EINVAL;
    }
    if (events && !json_is_null(events) && !json_is_array(events)) {
        snprintf(err, errlen, "the export's \"events\" must be a list of reward records or null");
        return SCOUT_EINVAL;
    }
    narms = json_array_size(arms);
    nevents = json_array_size(events);
    if (narms > SCOUT_MAX_VARIANTS || nevents > TEST_EXPORT_MAX_EVENTS) {
        *status = 400;
        snprintf(err, errlen, "the export holds %zu arm records and %zu events; an import takes at most %d and %d",
                 narms, nevents, SCOUT_MAX_VARIANTS, TEST_EXPORT_MAX_EVENTS);
        return SCOUT_EINVAL;
    }
    if (!(x->recs = calloc(narms + nevents + 2, sizeof *x->recs))) {
        snprintf(err, errlen, "out of memory");
        return SCOUT_ENOMEM;
    }
    if (export_record(&r, "test", json_object_get(doc, "test"), "test", &x->recs[k++]) < 0) goto bad;
    for (size_t i = 0; i < narms; i++)
        if (export_record(&r, "arms", json_array_get(arms, i), "arm", &x->recs[k++]) < 0) goto bad;
    if (export_record(&r, "snapshot", json_object_get(doc, "snapshot"), "snapshot", &x->recs[k++]) < 0) goto bad;
    x->state = r.state;   /* the snapshot record borrows it: it is ours now */
    x->state_len = x->recs[k - 1].u.snapshot.len;
    r.state = NULL;
    for (size_t i = 0; i < nevents; i++)
        if (export_record(&r, "events", json_array_get(events, i), "reward", &x->recs[k++]) < 0) goto bad;
    x->n = k;
    x->events = nevents;
    return SCOUT_OK;
bad:
    free(r.state);
    if (!strcmp(err, "out of memory")) return SCOUT_ENOMEM;
    return SCOUT_EINVAL;
}
