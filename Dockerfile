# One image per binary of the workspace, chosen with the SERVICE build arg:
#   docker build --build-arg SERVICE=creneau-gateway -t creneau-gateway .
# SERVICE is one of creneau-gateway, creneau-eligibility,
# creneau-centre-directory, creneau-slot-inventory, creneau-notification, or
# creneau (the all-in-one CLI, which also runs `creneau migrate`).
ARG SERVICE=creneau

FROM rust:1.95-bookworm AS build
ARG SERVICE
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the target directory between
# builds, so the six images share one compilation of the dependencies.
# `sharing=locked` serialises concurrent builds rather than letting them
# corrupt a shared target directory. The binary is copied out of the cached
# target directory in the same step, since that mount is gone afterwards.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    case "${SERVICE}" in \
      creneau|creneau-gateway|creneau-eligibility|creneau-centre-directory|creneau-slot-inventory|creneau-notification) ;; \
      *) echo "unknown SERVICE '${SERVICE}'" >&2; exit 64 ;; \
    esac \
 && cargo build --release --locked --bin "${SERVICE}" \
 && install -D -m 0755 "target/release/${SERVICE}" /out/app

# distroless/cc has glibc and libgcc for a dynamically linked Rust binary and
# nothing else: no shell, no package manager. TLS is rustls, so no OpenSSL.
#
# Expected sizes: the base is about 25 MB; a stripped service binary 15 to
# 25 MB (the all-in-one creneau, with every service, measures 24 MB), so an
# image is roughly 40 to 50 MB uncompressed. Each binary carries its gRPC
# stack, both database drivers and the SQLite engine (kept so any service
# can run embedded), which is most of its weight.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/creneau/creneau" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/app /usr/local/bin/app
# UID 65532 in this image. Kubernetes cannot check a user *name* against
# runAsNonRoot, which is why the chart also sets runAsUser: 65532.
USER nonroot
ENTRYPOINT ["/usr/local/bin/app"]
