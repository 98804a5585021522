package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
)

// bodyLimit bounds how much of a response is read for the substring match.
const bodyLimit = 64 << 10

// HTTPProber passes when a GET returns an expected status and, if asked, a
// body holding a substring (keepalived's HTTP_GET / SSL_GET).
type HTTPProber struct {
	// URL is the full address probed, the real server's own address in it.
	URL string
	// ExpectStatus lists the passing status codes; 200 when empty.
	ExpectStatus []int
	// BodyContains, when set, must occur in the first 64 KiB of the body.
	BodyContains string
	Headers      map[string]string
	// Username and PasswordFile give basic auth; the file is read at each
	// probe, so a rotated password needs no reload.
	Username     string
	PasswordFile string
	// TLS configures https.
	TLS *tls.Config
	// Dialer, when set, dials instead of a zero net.Dialer.
	Dialer *net.Dialer
}

// Probe runs one GET on a fresh connection.
func (p *HTTPProber) Probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return fmt.Errorf("http check: %w", err)
	}
	for k, v := range p.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if p.Username != "" {
		password, err := os.ReadFile(p.PasswordFile)
		if err != nil {
			return fmt.Errorf("http check: password: %w", err)
		}
		req.SetBasicAuth(p.Username, strings.TrimRight(string(password), "\r\n"))
	}
	dialer := dialerOr(p.Dialer)
	transport := &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: p.TLS, DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		// A health endpoint answers itself; a redirect is an answer to judge.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("http check: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		return fmt.Errorf("http check %s: read body: %w", p.URL, err)
	}
	io.Copy(io.Discard, resp.Body) // read to the end so the close is a FIN
	want := p.ExpectStatus
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, resp.StatusCode) {
		return fmt.Errorf("http check %s: status %d, want %v", p.URL, resp.StatusCode, want)
	}
	if p.BodyContains != "" && !bytes.Contains(body, []byte(p.BodyContains)) {
		return fmt.Errorf("http check %s: body lacks %q", p.URL, p.BodyContains)
	}
	return nil
}
