# backend.Dockerfile — the scoutd image (scout-backend:latest). Build context: the repository root
# (`docker build -f deploy/docker/backend.Dockerfile .`, or deploy/docker/build-images.sh).
# Stage 1 compiles build/scoutd on the local Debian 12 base (scout-base:bookworm, made by
# base-image.sh); stage 2 is FROM scratch and holds only scoutd, the shared libraries ldd names,
# passwd/group entries for uid/gid 1000 and the empty /tmp and /data mount points: no shell, no
# package manager. Runs as 1000:1000 with a read-only root; only /tmp and /data need be writable.
FROM scout-base:bookworm AS build
# The C toolchain and the -dev packages of the Makefile's PKGS (build-essential minus C++ and
# dpkg-dev, which the build never uses). When PKGS grows, the check below names the module.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make binutils pkg-config \
      libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libhiredis-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the server build reads: never the host's build/, data/ or ui/node_modules.
COPY Makefile ./
RUN missing=$(for m in $(sed -n 's/^PKGS *:= *//p' Makefile); do pkg-config --exists "$m" || echo "$m"; done); \
    [ -z "$missing" ] || { echo "backend.Dockerfile: install the -dev packages of: $missing" >&2; exit 1; }
COPY src/ src/
RUN make -j"$(nproc)" build/scoutd \
 && install -D -s -m 0755 build/scoutd /usr/local/bin/scoutd
COPY deploy/docker/collect-rootfs.sh /usr/local/bin/collect-rootfs
RUN collect-rootfs /rootfs /usr/local/bin/scoutd \
 && install -d -m 0700 -o 1000 -g 1000 /rootfs/data

FROM scratch
COPY --from=build /rootfs/ /
USER 1000:1000
ENV SCOUT_HOST=0.0.0.0 \
    SCOUT_PORT=8000 \
    SCOUT_UI_PORT=0 \
    SCOUT_DATA_DIR=/data
EXPOSE 8000
VOLUME /data
ENTRYPOINT ["/usr/local/bin/scoutd"]
