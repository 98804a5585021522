package healthcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPProbe(t *testing.T) {
	password := filepath.Join(t.TempDir(), "password")
	os.WriteFile(password, []byte("s3cret\n"), 0o600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); r.URL.Path == "/auth" && (!ok || user != "monitor" || pass != "s3cret") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/", http.StatusFound)
			return
		}
		if r.Host != "rmq.example" && r.URL.Path == "/host" {
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		prober  HTTPProber
		wantErr string
	}{
		{"plain 200", HTTPProber{URL: srv.URL + "/"}, ""},
		{"body match", HTTPProber{URL: srv.URL + "/", BodyContains: `"status":"ok"`}, ""},
		{"body mismatch", HTTPProber{URL: srv.URL + "/", BodyContains: "healthy"}, `body lacks "healthy"`},
		{"basic auth from a file", HTTPProber{URL: srv.URL + "/auth", Username: "monitor", PasswordFile: password}, ""},
		{"no auth", HTTPProber{URL: srv.URL + "/auth"}, "status 401, want [200]"},
		{"missing password file", HTTPProber{URL: srv.URL + "/auth", Username: "monitor", PasswordFile: "/nonexistent"}, "password: open /nonexistent"},
		{"redirect is judged, not followed", HTTPProber{URL: srv.URL + "/moved"}, "status 302"},
		{"redirect expected", HTTPProber{URL: srv.URL + "/moved", ExpectStatus: []int{302}}, ""},
		{"host header", HTTPProber{URL: srv.URL + "/host", Headers: map[string]string{"Host": "rmq.example"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.prober.Probe(context.Background())
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Probe = %v, want error %q", err, tt.wantErr)
			}
		})
	}
	srv.Close()
	if err := (&HTTPProber{URL: srv.URL}).Probe(context.Background()); err == nil {
		t.Errorf("probe of a closed server passed")
	}
}
