# Build the manager binary.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Cache dependencies before copying the sources.
COPY go.mod go.sum ./
RUN go mod download

COPY main.go main.go
COPY api/ api/
COPY controllers/ controllers/
COPY webhookserver/ webhookserver/
COPY internal/ internal/

# A static binary: no libc needed in the final image.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o manager main.go

# Scratch: the static binary is the whole image. It needs no CA bundle (the
# in-cluster config reads the API server's CA from the service account) and
# runs as a numeric non-root user.
FROM scratch
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
