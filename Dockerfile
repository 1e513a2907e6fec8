# Durin as a container image, for users with Docker:
#   docker build -t ghcr.io/durin-dev/durin:0.1.0 .
# scripts/image builds the same image without a Docker daemon (umoci), and is what the tests
# prove; tests/image.rs keeps the two in step (paths copied, build flags, user, entrypoint).
# A static (musl) binary in an image from scratch: no shell, no libc, uid/gid 65532 "nonroot".

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
COPY examples ./examples
COPY bench ./bench
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" --bin durin \
    && install -D -m 0755 -s "target/$(uname -m)-unknown-linux-musl/release/durin" /rootfs/usr/local/bin/durin
RUN install -d -m 0700 -o 65532 -g 65532 /rootfs/data \
    && install -d -m 1777 /rootfs/tmp \
    && install -d -m 0755 /rootfs/etc \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 7233 9090
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/durin"]
CMD ["operator", "--data-dir=/data"]
