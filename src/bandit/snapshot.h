/* snapshot.h — a test's learned state (struct policy with its linear model) as bytes, so a
 * replica can start from a snapshot plus the events after it instead of replaying every event,
 * and old events can be trimmed. Decoding gives back exactly, bit for bit, the state that was
 * encoded: folding further events into it gives the same results as folding them into the
 * original. The bytes are portable (every field written little-endian, doubles as their
 * IEEE-754 bits) and end with a checksum; decode treats them as untrusted input.
 *
 * Layout (format 1): "SCOUTSNP", u32 format, f64 last_update_at, u32 kind, u32 narms,
 * f64 discount, per arm n/sum/sumsq/w/ws/wss, u64 updates, f64 rmin, f64 rmax, u64 version,
 * u8 has_model, [model], u64 checksum. The model: u32 narms, d, cap, f64 lambda, discount,
 * the used d×d part of every arm's A⁻¹ (then of A when discount < 1), d entries of every arm's
 * b then θ, arm_updates, u32 nfeat, the features (u32-length strings, u32 slots with
 * 0xffffffff for none, per value its per-arm reward statistics), u64 dropped, f64 rn, rmean,
 * rm2. The checksum is snapshot_checksum() of every byte before it. */
#ifndef SCOUT_SNAPSHOT_H
#define SCOUT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "bandit/policy.h"

#define SNAPSHOT_FORMAT 1

/* Encodes p's learned state and last_update_at. *out is malloc'd (the caller frees it), *len
 * its size. SCOUT_OK or SCOUT_ENOMEM (then *out is untouched). p is only read. */
int snapshot_encode(const struct policy *p, double last_update_at, unsigned char **out, size_t *len);

/* Decodes into p, which the caller made with policy_init for the test (its kind, narms,
 * epsilon, discount): on success p's learned state (arms, updates, rmin, rmax, version, lin
 * model) is replaced by the snapshot's (p keeps owning it; the old state is freed) and
 * *last_update_at is set. SCOUT_EINVAL, with a sentence in err, when the bytes are not a
 * snapshot of this format, are truncated or corrupt, or were taken for a different policy
 * shape (kind, narms or discount differ from p's); SCOUT_ENOMEM (also said in err) when out of
 * memory. On any error p and *last_update_at are left unchanged. buf is only read. Memory used
 * is bounded by a small multiple of len (every count is checked against the bytes left before
 * allocating). */
int snapshot_decode(const unsigned char *buf, size_t len, struct policy *p, double *last_update_at, char *err,
                    size_t errlen);

/* The checksum that ends a snapshot: 64-bit FNV-1a of buf[0..len). Any single changed byte
 * changes it. Public so that tools (the fuzz target) can build well-formed snapshots. */
uint64_t snapshot_checksum(const unsigned char *buf, size_t len);

#endif
