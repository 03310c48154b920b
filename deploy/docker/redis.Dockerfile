# redis.Dockerfile — the Redis image of the compose topology (scout-redis:latest): Debian 12's
# redis-server and redis-cli (the healthcheck) FROM scratch, no shell, uid/gid 1000, data in the
# /data volume. Build context: the repository root. Redis cannot read a password file, so the
# password arrives as a configuration file holding one line `requirepass <password>`, mounted as
# the compose secret redis_conf at /run/secrets/redis_conf (see deploy/compose.yaml for how to
# generate it): the password never appears on a command line, in the environment or in the image.
FROM scout-base:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/collect-rootfs.sh /usr/local/bin/collect-rootfs
RUN collect-rootfs /rootfs /usr/bin/redis-server /usr/bin/redis-cli \
 && install -d -m 0700 -o 1000 -g 1000 /rootfs/data

FROM scratch
COPY --from=build /rootfs/ /
USER 1000:1000
WORKDIR /data
EXPOSE 6379
VOLUME /data
ENTRYPOINT ["/usr/bin/redis-server"]
# The secret config first; the settings after it are not secret and override nothing in it.
CMD ["/run/secrets/redis_conf", "--bind", "0.0.0.0", "--port", "6379", "--dir", "/data", \
     "--appendonly", "yes"]
