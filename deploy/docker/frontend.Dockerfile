# frontend.Dockerfile — the web UI image (scout-frontend:latest): Debian's nginx serving the
# built ui/dist on port 3000. Build context: the repository root, where `make` (or `make ui`) must
# have built ui/dist first — the UI is NOT built in the image: Vite 8 needs Node >= 20.19 and
# npm 11, which Debian 12's nodejs (18) cannot provide offline, while the machine's own Node does.
# Runtime is FROM scratch: nginx, its libraries, mime.types, frontend-nginx.conf and the UI
# files; no shell. Runs as 1000:1000 with a read-only root and a tmpfs on /tmp.
FROM scout-base:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/collect-rootfs.sh /usr/local/bin/collect-rootfs
RUN collect-rootfs /rootfs /usr/sbin/nginx \
 && install -D -m 0644 /etc/nginx/mime.types /rootfs/etc/nginx/mime.types

FROM scratch
COPY --from=build /rootfs/ /
COPY deploy/docker/frontend-nginx.conf /etc/nginx/nginx.conf
COPY ui/dist/ /usr/share/scout/ui/
USER 1000:1000
EXPOSE 3000
# -e stderr: nginx opens its error log before reading the configuration, and the compiled-in
# /var/log/nginx/error.log is not writable on a read-only root.
ENTRYPOINT ["/usr/sbin/nginx", "-e", "stderr"]
