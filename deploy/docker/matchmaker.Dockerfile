# The Bevygap matchmaker, built from the workspace (build context: the repository root).
#   docker build -f deploy/docker/matchmaker.Dockerfile -t bevygap-matchmaker:1.0.0 .
# Multi-stage: the release build happens in the Rust image; the runtime image is distroless
# (glibc, CA certificates for Edgegap's HTTPS API, no shell) and runs as a non-root user.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bevygap_matchmaker --bin bevygap-matchmaker

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/bevygap-matchmaker /usr/local/bin/bevygap-matchmaker
# distroless "nonroot"
USER 65532:65532
# Players (JSON-RPC + SSE) and operators (admin, dashboard, /metrics).
EXPOSE 7800/tcp 15702/tcp
ENTRYPOINT ["/usr/local/bin/bevygap-matchmaker"]
