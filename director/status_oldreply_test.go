package director

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// A director started before an upgrade answers every GET /v1/status with
// its JSON report: the new client still prints a table, filtered.
func TestStatusTableFromADirectorThatAnswersJSON(t *testing.T) {
	report := filterReport(t)
	socket := filepath.Join(t.TempDir(), "director.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	table, err := QueryStatusTable(socket, []string{"management"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), "\nmanagement  tcp") || strings.Contains(string(table), "\namqp") || strings.HasPrefix(string(table), "{") {
		t.Errorf("table:\n%s", table)
	}
	if _, err := QueryStatusTable(socket, []string{"managment"}, nil); !errors.Is(err, ErrUnknownName) {
		t.Errorf("an unknown name: %v", err)
	}
}
