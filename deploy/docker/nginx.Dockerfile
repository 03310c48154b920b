# nginx.Dockerfile — the reverse proxy image (scout-nginx:latest): Debian's nginx with
# deploy/nginx/nginx.conf and the routes it includes (deploy/nginx/scout-routes.conf), on port 80.
# Build context: the repository root. Runtime is FROM scratch (nginx, its libraries and
# mime.types; no shell), runs as 1000:1000 with a read-only root: the configuration keeps the pid
# file and temp paths under /tmp (a tmpfs). Port 80 without a capability: Docker sets
# net.ipv4.ip_unprivileged_port_start=0 in the container; Kubernetes sets it as a pod sysctl.
# Upstream names (backend, frontend) are resolved when nginx starts, so start it after them.
FROM scout-base:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/collect-rootfs.sh /usr/local/bin/collect-rootfs
RUN collect-rootfs /rootfs /usr/sbin/nginx \
 && install -D -m 0644 /etc/nginx/mime.types /rootfs/etc/nginx/mime.types

FROM scratch
COPY --from=build /rootfs/ /
COPY deploy/nginx/nginx.conf deploy/nginx/scout-routes.conf /etc/nginx/
USER 1000:1000
EXPOSE 80
# -e stderr: nginx opens its error log before reading the configuration, and the compiled-in
# /var/log/nginx/error.log is not writable on a read-only root.
ENTRYPOINT ["/usr/sbin/nginx", "-e", "stderr", "-g", "daemon off;"]
