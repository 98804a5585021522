package director

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/lvsdr/lvsdr/healthcheck"
)

// CheckStatus is the state of one health check as the control socket
// reports it.
type CheckStatus struct {
	Key       healthcheck.Key `json:"key"`
	State     string          `json:"state"`
	Since     time.Time       `json:"since"`
	LastError string          `json:"last_error,omitempty"`
	Latency   time.Duration   `json:"latency_ns"`
}

// ErrNoDirector means no director answers on the control socket.
var ErrNoDirector = errors.New("no director is running")

const (
	checksPath = "/v1/checks"
	statusPath = "/v1/status"
	reloadPath = "/v1/reload"
)

// controlHandlers is what the control socket answers with.
type controlHandlers struct {
	checks   *healthcheck.Manager
	maintain func(node string, on bool) error
	report   func() (Report, error)
	// reload applies the file again and returns nil, or why it was refused.
	reload func() error
	// release makes a VRRP master step down (on) or lets it take the VIP
	// back (off).
	release func(on bool) error
}

// serveControl answers status, maintenance and reload requests on a unix
// socket that only root can open. It returns a function that stops the
// server.
func serveControl(path string, h controlHandlers, log *slog.Logger) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// A socket file left by a director that died is in the way; one that a
	// live director answers on is not ours to take.
	if _, err := QueryChecks(path); err == nil {
		return nil, fmt.Errorf("control socket %s: another director is running", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+checksPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(checkStatuses(h.checks)); err != nil {
			log.Warn("control socket: write reply", "error", err)
		}
	})
	mux.Handle("GET "+statusPath, StatusHandler(h.report, log))
	for verb, on := range map[string]bool{"drain": true, "undrain": false} {
		mux.HandleFunc("POST /v1/"+verb+"/{node}", func(w http.ResponseWriter, r *http.Request) {
			err := h.maintain(r.PathValue("node"), on)
			switch {
			case errors.Is(err, ErrUnknownNode):
				http.Error(w, err.Error(), http.StatusNotFound)
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	for verb, on := range map[string]bool{"release": true, "unrelease": false} {
		mux.HandleFunc("POST /v1/ha/"+verb, func(w http.ResponseWriter, _ *http.Request) {
			err := h.release(on)
			switch {
			case errors.Is(err, ErrNoHA):
				http.Error(w, err.Error(), http.StatusConflict)
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	mux.HandleFunc("POST "+reloadPath, func(w http.ResponseWriter, _ *http.Request) {
		if err := h.reload(); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Remove(path)
	}, nil
}

func checkStatuses(checks *healthcheck.Manager) []CheckStatus {
	snapshot := checks.Snapshot()
	out := make([]CheckStatus, 0, len(snapshot))
	for key, st := range snapshot {
		cs := CheckStatus{Key: key, State: st.State.String(), Since: st.Since, Latency: st.Latency}
		if st.LastError != nil {
			cs.LastError = st.LastError.Error()
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// controlClient talks HTTP over the control socket.
func controlClient(path string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

func controlError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (no answer on %s)", ErrNoDirector, path)
	}
	return fmt.Errorf("ask the director at %s: %w", path, err)
}

// StatusHandler answers GET /v1/status with report: JSON, or with
// ?format=table the table WriteStatus draws, and with ?service= and ?node=
// only those (an unknown name is 404 with the near one). The control
// socket serves it; so can a test of the client.
func StatusHandler(report func() (Report, error), log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r, err := report()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		q := req.URL.Query()
		if r, err = FilterReport(r, q["service"], q["node"]); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if q.Get("format") == "table" {
			// Drawn here rather than by the client: at 10,000 real
			// servers the report's JSON, written and read again, cost
			// more than the table.
			var table bytes.Buffer
			if err := WriteStatus(&table, r); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if _, err := w.Write(table.Bytes()); err != nil {
				log.Warn("control socket: write reply", "error", err)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(r); err != nil {
			log.Warn("control socket: write reply", "error", err)
		}
	})
}

// QueryStatusTable asks the running director for its status drawn as
// WriteStatus draws it, with only the named services and real servers
// (none: all). ErrNoDirector if none answers; a name it does not know is
// ErrUnknownName.
func QueryStatusTable(path string, services, nodes []string) ([]byte, error) {
	q := url.Values{"format": {"table"}, "service": services, "node": nodes}
	resp, err := controlClient(path).Get("http://director" + statusPath + "?" + q.Encode())
	if err != nil {
		return nil, controlError(path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the director's answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return body, nil
		}
		// A director started before an upgrade answers the query with
		// JSON, whatever it asks: draw it here.
		return drawOldReply(body, services, nodes)
	case http.StatusNotFound:
		// The director's own words, which name the near one.
		return nil, unknownNameError(strings.TrimSpace(string(body)))
	}
	return nil, fmt.Errorf("ask the director at %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
}

// drawOldReply draws the JSON report of a director that does not draw
// tables, filtered as it would have.
func drawOldReply(body []byte, services, nodes []string) ([]byte, error) {
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("read the director's answer: %w", err)
	}
	r, err := FilterReport(r, services, nodes)
	if err != nil {
		return nil, err
	}
	var table bytes.Buffer
	if err := WriteStatus(&table, r); err != nil {
		return nil, err
	}
	return table.Bytes(), nil
}

// unknownNameError is the director's refusal of a filter, as an error
// that is ErrUnknownName.
type unknownNameError string

func (e unknownNameError) Error() string { return string(e) }
func (e unknownNameError) Unwrap() error { return ErrUnknownName }

// SetMaintenance asks a running director to drain a real server (on) or to
// put it back.
func SetMaintenance(path, node string, on bool) error {
	verb := "undrain"
	if on {
		verb = "drain"
	}
	resp, err := controlClient(path).Post("http://director/v1/"+verb+"/"+url.PathEscape(node), "", nil)
	if err != nil {
		return controlError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s", verb, node, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Reload asks a running director to read its file again and waits for the
// outcome: nil when the new file is in force, the director's reason when it
// kept the old one.
func Reload(path string) error {
	resp, err := controlClient(path).Post("http://director"+reloadPath, "", nil)
	if err != nil {
		return controlError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: %s", ErrReloadRefused, strings.TrimSpace(string(msg)))
	}
	return nil
}

// ReleaseMaster asks a running director to step down as VRRP master (on)
// or to take part in elections again (off).
func ReleaseMaster(path string, on bool) error {
	verb := "unrelease"
	if on {
		verb = "release"
	}
	resp, err := controlClient(path).Post("http://director/v1/ha/"+verb, "", nil)
	if err != nil {
		return controlError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("ha %s: %s", verb, strings.TrimSpace(string(msg)))
	}
	return nil
}

// ErrReloadRefused means the running director refused the file and kept
// the topology in force.
var ErrReloadRefused = errors.New("the director refused the reload and keeps the topology in force")

// QueryChecks asks a running director for its check states.
func QueryChecks(path string) ([]CheckStatus, error) {
	resp, err := controlClient(path).Get("http://director" + checksPath)
	if err != nil {
		return nil, controlError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask the director at %s: %s", path, resp.Status)
	}
	var out []CheckStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("read the director's answer: %w", err)
	}
	return out, nil
}

// QueryStatus asks a running director for its report: the topology it runs,
// the kernel as it reads it, its check states and maintenance.
func QueryStatus(path string) (Report, error) {
	resp, err := controlClient(path).Get("http://director" + statusPath)
	if err != nil {
		return Report{}, controlError(path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Report{}, fmt.Errorf("ask the director at %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	var r Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("read the director's answer: %w", err)
	}
	return r, nil
}
