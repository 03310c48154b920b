#!/usr/bin/env bash
# build-images.sh — builds Scout's container images from this checkout, base image first:
#   deploy/docker/build-images.sh [backend|frontend|nginx|redis|prometheus ...]   (default: all)
# The .dockerignore strategy: each image is built from a context streamed as a tar of exactly the
# paths its Dockerfile copies (listed below), never the whole checkout, so host build output,
# data/, ui/node_modules and secrets can neither reach an image nor slow the build; and every
# Dockerfile COPYs an allow-list, so a build from the repository root (`docker-compose build`)
# gives the same image. The frontend copies the already built ui/dist: run `make` first.
set -euo pipefail
cd "$(dirname "$0")/../.."

declare -A CONTEXT=(
  [backend]="Makefile src deploy/docker"
  [frontend]="deploy/docker ui/dist"
  [nginx]="deploy/docker deploy/nginx"
  [redis]="deploy/docker"
  [prometheus]="deploy/docker"
)
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(backend frontend nginx redis prometheus)

bash deploy/docker/base-image.sh
for name in "${images[@]}"; do
  [ -n "${CONTEXT[$name]:-}" ] || { echo "build-images: unknown image $name" >&2; exit 2; }
  if [ "$name" = frontend ] && [ ! -f ui/dist/index.html ]; then
    echo "build-images: ui/dist is not built: run make first" >&2
    exit 1
  fi
  echo "build-images: scout-$name:latest"
  # shellcheck disable=SC2086  # the context is a list of paths
  tar -c --owner=0 --group=0 ${CONTEXT[$name]} |
    docker build --force-rm ${SCOUT_BUILD_FLAGS:-} -f "deploy/docker/$name.Dockerfile" -t "scout-$name:latest" -
done
