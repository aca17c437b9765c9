# Heard: build with the Swift image, run on a slim Debian with libpq5 only.
ARG SWIFT_IMAGE=swift:6.2-bookworm

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
RUN swift build -c release --product heard --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/heard" /heard

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home heard
WORKDIR /app
COPY --from=build /heard /usr/local/bin/heard
COPY Migrations ./Migrations
USER heard
ENV HOST=0.0.0.0 PORT=8080 MIGRATIONS_DIR=/app/Migrations
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# The same command the README runs (there via `swift run heard serve`): migrate, then serve.
CMD ["heard", "serve"]
