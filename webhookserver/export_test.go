package webhookserver

import (
	"time"

	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// NewForTest builds a server on c (for both the cache and the API reader)
// with a clock, without a manager.
func NewForTest(c client.Client, opts Options, now func() time.Time) *Server {
	s := newServer(c, c, nil, log.Log, opts)
	s.now = now
	return s
}

// ReceiverPaths is the WebhookPathIndex function, for fake clients.
var ReceiverPaths = receiverPaths

// NewForTestWithRecorder is NewForTest with an event recorder.
func NewForTestWithRecorder(c client.Client, opts Options, now func() time.Time, recorder events.EventRecorder) *Server {
	s := newServer(c, c, recorder, log.Log, opts)
	s.now = now
	return s
}

// RouteForLog is the path as logged.
var RouteForLog = routeForLog

// BodiesInFlight is the number of callback bodies being read.
func BodiesInFlight(s *Server) int { return len(s.bodies) }
