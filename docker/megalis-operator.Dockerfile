# syntax=docker/dockerfile:1
# Image of the Megalis operator. Build from the repository root:
#   docker build -f docker/megalis-operator.Dockerfile -t megalis-operator .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/src/target --mount=type=cache,target=/usr/local/cargo/registry \
    CARGO_TARGET_DIR=/src/target docker/build.sh operator /out

# Distroless: no shell, no package manager; glibc only (rustls, no OpenSSL).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/megalis-operator /usr/local/bin/megalis-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/megalis-operator"]
CMD ["run"]
