// Module flux pins Flux notification-controller, run by the test that sends
// CloudEvents to a real generic-hmac Receiver (test/flux, build tag flux).
// Build it with `hack/tools/build.sh flux-notification-controller`; never
// import it.
//
// Not buildable through the module proxy available when this was written:
// the proxy refuses v1.7.0's go.mod (403), and v1.6.0, whose go.mod it
// serves, depends on github.com/fluxcd/pkg/git, whose checksums the
// checksum database lookup does not return (404). When both resolve, run
// `go mod tidy` here to record go.sum, then build.
module chatgroup.dev/chatgroup-operator/hack/tools/flux

go 1.26.0

require github.com/fluxcd/notification-controller v1.7.0
