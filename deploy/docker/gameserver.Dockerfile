# The demo game server (your game's server binary goes here the same way), built from the
# workspace (build context: the repository root). The same image serves the `fleet` provider
# (docker compose, systemd) and Edgegap (push it to Edgegap's registry with a version tag,
# never `latest`; see docs/edgegap.md).
#   docker build -f deploy/docker/gameserver.Dockerfile -t bevygap-demo-server:1.0.0 .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bevygap_demo --bin bevygap-demo-server

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/bevygap-demo-server /usr/local/bin/bevygap-demo-server
# distroless "nonroot"
USER 65532:65532
# Lightyear over UDP and over WebTransport (QUIC, also UDP); the ports are set by
# BEVYGAP_UDP_BIND / BEVYGAP_WT_BIND (fleet) or by Edgegap's port mappings.
EXPOSE 6420/udp 6421/udp
ENTRYPOINT ["/usr/local/bin/bevygap-demo-server"]
