# The image a Kubernetes Job runs (deploy/kubernetes/, docs/distributed.md): inrush and the shard
# entrypoint on a small Debian runtime, as a non-root user.
#   docker build -t inrush:0.1.0 .
#   docker run --rm inrush:0.1.0 validate /etc/inrush/scenario.toml   (with the scenario mounted)

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src scenarios && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo fetch --locked
COPY src src
COPY scenarios scenarios
# `inrush plan --kubernetes` fills in the shipped manifests (include_str!).
COPY deploy deploy
RUN cargo build --release --locked --bin inrush \
    && strip target/release/inrush

FROM debian:bookworm-slim
# ca-certificates: https:// targets are verified against the system's roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 inrush \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin inrush
COPY --from=build /src/target/release/inrush /usr/local/bin/inrush
COPY deploy/kubernetes/entrypoint.sh /usr/local/bin/inrush-shard
USER 10001:10001
WORKDIR /results
ENTRYPOINT ["inrush"]
CMD ["--help"]
