package restfake

import (
	"net/http"
	"net/http/httptest"
	"sync"
)

// Server is a running fake REST server on 127.0.0.1.
type Server struct {
	// URL is the server's base URL.
	URL string

	srv  *httptest.Server
	done chan struct{}
	once sync.Once
}

// Serve starts a server for handler on a loopback port (httptest binds
// 127.0.0.1); Close stops it.
func Serve(handler http.Handler) *Server {
	s := &Server{srv: httptest.NewServer(handler), done: make(chan struct{})}
	s.URL = s.srv.URL
	return s
}

// Done is closed when Close is called, so handlers holding a request (the
// timeout fault) return and let the server stop.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close releases held requests and stops the server; calling it again
// does nothing.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}
