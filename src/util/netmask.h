/* netmask.h — address ranges ("10.0.0.0/8", "fd00::/8", or one address) and whether an address
 * text falls in one. Used for SCOUT_TRUSTED_PROXIES: in a cluster the proxies' addresses are
 * not fixed, their pod network is. IPv4-mapped IPv6 peers ("::ffff:10.1.2.3") match IPv4
 * ranges. */
#ifndef SCOUT_NETMASK_H
#define SCOUT_NETMASK_H

#include <stddef.h>

struct netmask {
    int family;                /* AF_INET or AF_INET6 */
    unsigned char addr[16];    /* network address, host bits cleared */
    int bits;                  /* prefix length: 32 / 128 for a single address */
};

/* Parses "ADDR" or "ADDR/BITS" (len bytes of text, no spaces). Returns 1 on success, 0 when
 * the text is not an address or the prefix is out of range. */
int netmask_parse(const char *text, size_t len, struct netmask *out);

/* 1 when the address text (len bytes) is a valid address inside any of the n ranges. */
int netmask_contains(const struct netmask *list, int n, const char *addr, size_t len);

#endif
