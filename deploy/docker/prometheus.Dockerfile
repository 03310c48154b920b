# prometheus.Dockerfile — the Prometheus image of the compose topology (scout-prometheus:latest):
# Debian 12's prometheus and promtool FROM scratch, no shell, uid/gid 1000, the time-series
# database in the /prometheus volume. Build context: the repository root. The configuration is
# not baked in: compose mounts deploy/prometheus/ read-only at /etc/prometheus, so editing the
# scrape or alert rules needs a restart, not a rebuild. Debian's console templates and classic
# web assets are left out: the HTTP API, /-/healthy and /-/ready are what the deployment uses.
FROM scout-base:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/collect-rootfs.sh /usr/local/bin/collect-rootfs
RUN collect-rootfs /rootfs /usr/bin/prometheus /usr/bin/promtool \
 && install -d -m 0700 -o 1000 -g 1000 /rootfs/prometheus

FROM scratch
COPY --from=build /rootfs/ /
USER 1000:1000
WORKDIR /prometheus
EXPOSE 9090
VOLUME /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--web.listen-address=:9090"]
