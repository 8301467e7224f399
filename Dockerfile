# resetd as a container image: a static binary on a distroless base, run as
# a non-root user. Used by examples/kubernetes/resetd.yaml.
#
#   docker build -t registry.example.com/resetd:0.1.0 .
#
# Not built in CI: CI's machine has no Docker engine (README, "Install").

FROM rust:1.95-bookworm AS build
# musl makes the binary fully static, so the final image needs no libc.
# ring compiles C code: musl-gcc comes from musl-tools.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --release --locked --target "$target" --bin resetd \
    && cp "target/$target/release/resetd" /resetd

# distroless/static: CA certificates (for the API's TLS), /etc/passwd with
# the nonroot user (65532), nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /resetd /usr/local/bin/resetd
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/resetd"]
