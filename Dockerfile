# Multi-stage build of the saasgate gateway: a static binary on a distroless base, run as the
# image's non-root user (uid/gid 65532). Build with the version `saasgate version` prints:
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t saasgate .
# cmd/saasgate/dockerfile_test.go holds the go build line to `make build`'s flags.

FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/caddyserver/caddy/v2.CustomVersion=${VERSION}" -o /out/saasgate ./cmd/saasgate
# An empty directory to become /data (distroless has no shell to mkdir/chown with).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/saasgate /usr/local/bin/saasgate
COPY Caddyfile /etc/saasgate/Caddyfile
COPY --from=build --chown=65532:65532 /out/data /data
# The working directory is /, so the default data_dir "./data" is the /data volume. Caddy's own
# storage (certificates, locks) and autosaved config go there too.
WORKDIR /
ENV XDG_DATA_HOME=/data \
    XDG_CONFIG_HOME=/data/config
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# Distroless has no shell or curl: the binary probes itself (`saasgate health`, cmd/saasgate).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/saasgate", "health", "--url", "http://127.0.0.1:8080/healthz", "--host", "api.localhost"]
ENTRYPOINT ["/usr/local/bin/saasgate"]
CMD ["run", "--config", "/etc/saasgate/Caddyfile"]
