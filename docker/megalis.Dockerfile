# syntax=docker/dockerfile:1
# Image of the Megalis platform server, with the region's plugins. Build from the repository root:
#   docker build -f docker/megalis.Dockerfile -t megalis .
FROM docker.io/library/rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/src/target --mount=type=cache,target=/usr/local/cargo/registry \
    CARGO_TARGET_DIR=/src/target docker/build.sh megalis /out

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/megalis /usr/local/bin/megalis
# Bundled plugin modules, content-addressed (<sha256>.wasm, index.txt maps names to digests).
COPY --from=build /out/plugins/ /usr/lib/megalis/plugins/
USER 65532:65532
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/megalis"]
CMD ["--config", "/etc/megalis/megalis.toml", "serve"]
