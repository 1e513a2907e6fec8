# Durin: one static-enough binary on a distroless base, running as a non-root user.
#   docker build -t ghcr.io/durin-dev/durin:0.1.0 .
# The chart's image defaults (charts/durin/values.yaml) point at this image.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src examples/durin_samples examples/k8s_worker \
    && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > examples/durin_samples/main.rs \
    && echo 'fn main() {}' > examples/k8s_worker/main.rs \
    && cargo build --release --bin durin \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --bin durin \
    && strip target/release/durin

# glibc and libgcc, nothing else; uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/durin /usr/local/bin/durin
USER 65532:65532
EXPOSE 7233 9090
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/durin"]
CMD ["operator", "--data-dir=/data"]
