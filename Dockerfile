# syntax=docker/dockerfile:1
#
# Assay in a container: `assay server` by default, `assay mcp serve` or any other command on
# request (the entrypoint is `assay`). Usage and caveats: README.md, "Docker".
#
# NOT BUILT HERE: the machines that develop and test Assay (and CI) have no Docker engine,
# so this image has never been built or run by the project; only linted (hadolint). It is
# kept deliberately plain: one build stage, one runtime stage, nothing generated.
#
#   docker build -t assay .
#   docker run --init -p 127.0.0.1:7357:7357 -v assay-data:/data assay

# ---- build ----------------------------------------------------------------------------
# The workspace needs Rust 1.94 or newer (Cargo.toml, rust-version). No system libraries:
# TLS is rustls with ring, SQLite is bundled, the keyring talks D-Bus in pure Rust.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit); the binary is
# copied out in the same step because the cached target dir is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p assay \
    && install -m 0755 target/release/assay /usr/local/bin/assay

# ---- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the trust store for outbound HTTPS (`assay mcp serve`, `assay login`,
# upstream SSO, git over https). git: workflows with `content.git` clone with the system git.
# Everything else your workflow steps run (python3, node, browsers, test tools) is NOT
# included: add it with --build-arg EXTRA_PACKAGES="python3 nodejs", or build FROM this image.
ARG EXTRA_PACKAGES="git"
# Unpinned on purpose: bookworm's point releases carry the security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates ${EXTRA_PACKAGES} \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid so a bind-mounted data directory can be chowned to it (10001).
RUN groupadd --system --gid 10001 assay \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin assay \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --from=build /usr/local/bin/assay /usr/local/bin/assay

# The URL clients use to reach the server. The default suits `-p 127.0.0.1:7357:7357` on
# your own machine; anywhere else, and with --tls-cert/ASSAY_TLS_CERT, set it to the real
# address (it becomes the OAuth issuer and the only Host the MCP endpoint answers to),
# e.g. -e ASSAY_PUBLIC_URL=https://assay.example.com
ENV ASSAY_PUBLIC_URL=http://localhost:7357

USER 10001:10001
WORKDIR /data
# Database, execution workspaces, logs, artifacts and (unless you pass
# ASSAY_KEY_ENCRYPTION_KEY_FILE) the key that seals the token-signing keys.
VOLUME /data
EXPOSE 7357
ENTRYPOINT ["assay"]
# Inside a container the server must listen on all interfaces to be reachable through a
# published port; publish it on 127.0.0.1 unless you mean to expose it.
CMD ["server", "--listen", "0.0.0.0:7357", "--data-dir", "/data"]
