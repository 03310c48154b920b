/* backup.h — `scoutd backup` and `scoutd restore`: a whole store, embedded or Redis, as one
 * file that restores into either (the file format is described in backup.c). A restore first
 * reads the whole file and checks it (backup_verify_file), so a corrupt, truncated or newer
 * file is refused before anything is written; the restore itself checks it again as it reads. */
#ifndef SCOUT_BACKUP_H
#define SCOUT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

#define BACKUP_FORMAT "scout-backup"
#define BACKUP_VERSION 1                      /* the newest format this build writes and reads */
#define BACKUP_MAX_LINE (64u * 1024 * 1024)   /* one record's JSON text (a snapshot is the largest) */

/* What a backup file holds, as written or as read. */
struct backup_summary {
    int version;
    char source[16];              /* the store it was taken from: "sqlite" or "redis" */
    double created;               /* epoch seconds */
    long records;                 /* lines before the trailer, the header included */
    long tests, rewards, decisions, assignments, tokens, settings, snapshots;
    long trimmed_snapshots;       /* snapshots whose covered events the shared store trimmed */
    char sha256[65];              /* hex, of every line before the trailer */
};

/* Writes a backup of everything s holds into path: a temp file beside it, created with mode
 * 0600, synced, then moved into place. An existing path is refused (SCOUT_ECONFLICT) unless
 * force. The store may be in use by running servers (see store_dump). On failure nothing is
 * left behind; err gets a sentence. */
int backup_write(struct store *s, const char *path, bool force, struct backup_summary *sum, char *err,
                 size_t errlen);

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

/* backup_verify_file's checks on bytes in memory: gzip-compressed, or (compressed false) the
 * JSON lines themselves. For the fuzz target. */
int backup_verify_mem(const void *data, size_t len, bool compressed, struct backup_summary *sum, char *err,
                      size_t errlen);

#endif
