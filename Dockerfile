# fanout_exporter container image.
#
#   docker build -t fanout_exporter .
#   docker run --rm -p 127.0.0.1:9930:9930 \
#     -v "$PWD/config.yaml:/etc/fanout_exporter/config.yaml:ro" fanout_exporter
#
# The configuration is read from /etc/fanout_exporter/config.yaml (the default command); mount a file
# there, or pass other flags, which replace the default command: `docker run ... fanout_exporter
# --config.file=/elsewhere.yaml --log.format=json`.
#
# The build stage runs the very command scripts/test runs natively (its "release build" step), so CI
# builds the same binary without a Docker engine; tests/deploy/container.rs checks that they agree.

# Build: Debian bookworm, so the binary links against the glibc the runtime image ships.
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
# Only the build's inputs (.dockerignore lets nothing else into the context).
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches/ benches/
COPY collectors/ collectors/
COPY testkit/ testkit/
COPY src/ src/
# The build context has no .git, so build.rs cannot ask git for the revision; pass it instead:
#   docker build --build-arg FANOUT_BUILD_REVISION="$(git rev-parse --short=12 HEAD)" .
# It is in the build step's environment, for build.rs, and labels the image (below).
ARG FANOUT_BUILD_REVISION=unknown
RUN cargo build --release --locked --bin fanout_exporter

# Run: distroless glibc image (libgcc, CA certificates, no shell, no package manager), as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG FANOUT_BUILD_REVISION=unknown
LABEL org.opencontainers.image.title="fanout_exporter" \
      org.opencontainers.image.description="One Prometheus exporter for MySQL/MariaDB, Redis/Valkey and HTTP targets, fanned out under one scrape deadline" \
      org.opencontainers.image.source="https://example.invalid/fanout_exporter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${FANOUT_BUILD_REVISION}"
COPY --from=build /src/target/release/fanout_exporter /usr/local/bin/fanout_exporter
USER 65532:65532
EXPOSE 9930
# Docker only (Kubernetes uses its own probes): GET /-/healthy on the default port 9930. Override it
# when the exporter listens elsewhere: `fanout_exporter healthcheck --web.listen-address=:PORT`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/fanout_exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fanout_exporter"]
CMD ["--config.file=/etc/fanout_exporter/config.yaml"]
