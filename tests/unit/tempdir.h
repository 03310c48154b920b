/* tempdir.h — a fresh directory under /tmp for tests that need a data dir, and its removal.
 * Header-only: each test program includes it once. */
#ifndef SCOUT_TEST_TEMPDIR_H
#define SCOUT_TEST_TEMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Creates /tmp/scout-unit-<tag>-XXXXXX into dir; 0 on success. */
static inline int tempdir_make(char *dir, size_t len, const char *tag) {
    snprintf(dir, len, "/tmp/scout-unit-%s-XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int tempdir_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it; 0 on success. */
static inline int tempdir_remove(const char *dir) {
    return nftw(dir, tempdir_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
