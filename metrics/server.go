package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves GET /metrics and GET /healthz over HTTP.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// Serve listens on addr and serves, in the background, the metrics of
// gatherer on /metrics and the answer of health on /healthz: 200 "ok" when
// it returns nil, 503 and the error's text otherwise. A listen failure is
// returned at once: "metrics on 127.0.0.1:9967: address already in use".
func Serve(addr netip.AddrPort, gatherer prometheus.Gatherer, health func(context.Context) error, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		// The errno alone says it: "listen tcp 127.0.0.1:9967: bind:" only
		// repeats the address.
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno
		}
		return nil, fmt.Errorf("metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog: errorLog{log},
		// A collector that fails costs its own series, not the scrape.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := health(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second},
		ln:  ln,
		log: log,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "address", addr, "error", err)
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on, the port chosen by the
// kernel when it was asked for port 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop closes the listener and waits up to two seconds for requests in
// flight.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("metrics server: stop", "error", err)
	}
}

// errorLog hands promhttp's errors to the director's log.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }
