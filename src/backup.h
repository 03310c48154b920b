/* backup.h — `scoutd backup` and `scoutd restore`: a whole store, embedded or Redis, as one
 * file that restores into either (the file format is described in backup.c). A restore first
 * reads the whole file and checks it (backup_verify_file), so a corrupt, truncated or newer
 * file is refused before anything is written; the restore itself checks it again as it reads. */
#ifndef SCOUT_BACKUP_H
#define SCOUT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "store/store.h"

#define BACKUP_FORMAT "scout-backup"
#define BACKUP_VERSION 1                      /* the newest format this build writes and reads */
#define BACKUP_MAX_LINE (64u * 1024 * 1024)   /* one record's JSON text (a snapshot is the largest) */
#define BACKUP_SETTING "last_backup"          /* the store's record of the latest backup (backup_note) */
#define BACKUP_KEEP_DEFAULT 7                 /* backups a directory keeps (SCOUT_BACKUP_KEEP) */
#define BACKUP_KEEP_MAX 1000

/* What a backup file holds, as written or as read. */
struct backup_summary {
    int version;
    char source[16];              /* the store it was taken from: "sqlite" or "redis" */
    double created;               /* epoch seconds */
    long records;                 /* lines before the trailer, the header included */
    long tests, rewards, decisions, assignments, tokens, settings, snapshots;
    long trimmed_snapshots;       /* snapshots whose events before them are not all there (trimmed, or
                                     the history of an imported test) */
    char sha256[65];              /* hex, of every line before the trailer */
    long long size;               /* bytes of the file (backup_write) */
    bool recorded;                /* backup_write: the store took the record of it (backup_note) */
};

/* The latest backup of a store, as every backup_write records it in the store (the setting
 * BACKUP_SETTING): so every server on that store, and not only the process that wrote the
 * file, reports its age and size in /metrics. The record is about the installation, not its
 * data: a backup file never carries it, so a restored store has none until its own first
 * backup. */
struct backup_note {
    double created;               /* epoch seconds; 0: no backup recorded */
    long long size;               /* bytes */
    char file[256];               /* the file's name (not its directory) */
};

/* Writes a backup of everything s holds into path: a temp file beside it, created with mode
 * 0600, synced, then moved into place. An existing path is refused (SCOUT_ECONFLICT) unless
 * force. The store may be in use by running servers (see store_dump). On failure nothing is
 * left behind; err gets a sentence. Once the file is in place the backup is recorded in the
 * store (backup_note); a store that does not take the record leaves sum->recorded false and
 * the backup stands. */
int backup_write(struct store *s, const char *path, bool force, struct backup_summary *sum, char *err,
                 size_t errlen);

/* What a backup holds, for people and scripts: file, version, source, created (ISO-8601),
 * records, counts by kind, sha256, and when written also size and recorded. New reference. */
json_t *backup_summary_json(const char *file, const struct backup_summary *sum, bool written);

/* The latest backup recorded in s (created 0 when none was). SCOUT_OK, or SCOUT_ESTORE when
 * the store cannot be read. */
int backup_note_load(struct store *s, struct backup_note *out);

/* A backup into the directory dir (created 0700 if missing) under a name made of the time,
 * "scout-20250102T030405.123Z.backup" (names sort in time order), then deletes the oldest
 * such files beyond keep (only files named that way: nothing else in dir is touched). One
 * backup at a time per directory, across processes (a lock file in dir): while one runs,
 * another gets SCOUT_ECONFLICT at once. The file's name goes to name (of namelen bytes) and
 * the number of files deleted to *pruned. Other results as backup_write. */
int backup_to_dir(struct store *s, const char *dir, int keep, struct backup_summary *sum, char *name, size_t namelen,
                  int *pruned, char *err, size_t errlen);

/* The number of backups to keep: SCOUT_BACKUP_KEEP when set, else BACKUP_KEEP_DEFAULT.
 * SCOUT_EINVAL with a sentence when it is not an integer within 1..BACKUP_KEEP_MAX. */
int backup_keep_from_env(int *keep, char *err, size_t errlen);

/* Reads the whole backup at path and checks it: gzip intact, every record well formed, the
 * trailer present with the right record count and SHA-256. SCOUT_EINVAL with a sentence in
 * err when it is not a backup, corrupt, truncated or of a newer format; SCOUT_ERR when it
 * cannot be read. */
int backup_verify_file(const char *path, struct backup_summary *sum, char *err, size_t errlen);

/* Writes the backup at path into s (see store_restore for force and for what a failure
 * leaves). Call backup_verify_file first: this checks the file again as it streams it, and a
 * file that changed in between fails the restore. SCOUT_EINVAL for a bad file or a record
 * the store cannot hold, SCOUT_ECONFLICT for a store that holds data, SCOUT_ESTORE for a
 * store failure; err gets a sentence. */
int backup_restore(struct store *s, const char *path, bool force, struct backup_summary *sum, char *err,
                   size_t errlen);

/* ---- one test as one JSON document: GET /admin/tests/{id}/export, POST /admin/tests/import ----
 *
 * A test export moves one test between installations (either store, either way). It holds the
 * records a backup holds for the test, each as a backup line writes it (the same encoding and
 * the same checks on reading), in one JSON object:
 *   {"format":"scout-test-export","version":1,"exported_at":ISO,"source":"sqlite"|"redis",
 *    "model_id","name","updates","events_included":bool,      — for people; the import reads:
 *    "test":{"type":"test",...}, "arms":[{"type":"arm",...}], "snapshot":{"type":"snapshot",...},
 *    "events":[{"type":"reward",...}]}                          — events only when included
 * The snapshot is the learned state (bandit/snapshot.h, base64): it covers the events, which
 * travel as history and are never folded into it again; its "id" and "trimmed" mean nothing
 * here. An import refuses a newer version, and reads every older one. */
#define TEST_EXPORT_FORMAT "scout-test-export"
#define TEST_EXPORT_VERSION 1
#define TEST_EXPORT_MAX_EVENTS 10000   /* events one export carries (and one import takes) */

/* A record as a backup line holds it, "type" included. New reference; NULL when out of memory. */
json_t *backup_record_json(const struct store_record *r);

/* A new export document of the test whose STORE_REC_TEST record is test (name and updates
 * for people), from the store named source; with events, an empty "events" list to fill.
 * New reference; NULL when out of memory. */
json_t *test_export_begin(const struct store_record *test, const char *source, const char *name, uint64_t updates,
                          bool events);

/* Appends an ARM, the SNAPSHOT or a REWARD record of the test to doc. SCOUT_OK, SCOUT_EINVAL
 * for another kind (or a reward without "events"), SCOUT_ENOMEM. */
int test_export_add(json_t *doc, const struct store_record *r);

/* An export document read back. recs borrow from doc and state (owned here). */
struct test_export {
    json_t *doc;
    struct store_record *recs;    /* [0] the test, then its arms, the snapshot, its events */
    size_t n;
    size_t events;
    unsigned char *state;         /* the snapshot's bytes */
    size_t state_len;
    int version;
    char source[16];
};

/* Reads an export document from len bytes of JSON text and checks every record as a backup
 * restore does. On failure: SCOUT_EINVAL with *status 400 (not JSON, or over a cap) or 422 (not
 * an export, a newer format, a record of the wrong shape) and a sentence in err; SCOUT_ENOMEM.
 * Memory is bounded by a small multiple of len. Free with test_export_free (also after a
 * failure). */
int test_export_parse(const char *text, size_t len, struct test_export *out, int *status, char *err, size_t errlen);
void test_export_free(struct test_export *x);

/* backup_verify_file's checks on bytes in memory: gzip-compressed, or (compressed false) the
 * JSON lines themselves. For the fuzz target. */
int backup_verify_mem(const void *data, size_t len, bool compressed, struct backup_summary *sum, char *err,
                      size_t errlen);

#endif
