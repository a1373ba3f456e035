# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in their own cached layer, the runtime image is
# Debian slim with the one binary, running as an unprivileged user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Cache the dependency layer: build a stub crate with the real manifest first.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY config ./config
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* curl=7.88.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/rappel --create-home rappel
COPY --from=build /src/target/release/rappel /usr/local/bin/rappel
COPY config /etc/rappel/config
COPY templates /etc/rappel/templates
USER rappel
WORKDIR /var/lib/rappel
ENV RAPPEL_CONFIG_DIR=/etc/rappel/config \
    RAPPEL__TEMPLATES__DIR=/etc/rappel/templates \
    RAPPEL__SERVER__BIND=0.0.0.0:8080 \
    RAPPEL__DATABASE__URL=sqlite:///var/lib/rappel/rappel.db
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/rappel"]
CMD ["serve"]
