package director

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"

	"github.com/lvsdr/lvsdr/healthcheck"
	"github.com/lvsdr/lvsdr/topology"
)

// NewProber makes the probe of one real server for a check of the topology.
func NewProber(t ProbeTarget, c topology.Check) healthcheck.Prober {
	target := t.Address
	dialer := healthcheck.MarkedDialer(t.Mark, t.Source)
	switch {
	case c.HTTP != nil:
		h := c.HTTP
		u := url.URL{Scheme: h.Scheme, Host: target.String(), Path: h.Path}
		p := &healthcheck.HTTPProber{
			URL: u.String(), ExpectStatus: h.ExpectStatus, BodyContains: h.BodyContains,
			Headers: h.Headers, Username: h.Username, PasswordFile: h.PasswordFile, Dialer: dialer,
		}
		if h.Scheme == "https" {
			p.TLS = &tls.Config{InsecureSkipVerify: h.TLSInsecureSkipVerify, ServerName: h.TLSServerName}
			if h.TLSCAFile != "" {
				p.TLS.RootCAs = caPool(h.TLSCAFile)
			}
		}
		return p
	case c.AMQP != nil:
		return &healthcheck.AMQPProber{Address: target.String(), Username: c.AMQP.Username, PasswordFile: c.AMQP.PasswordFile, VHost: c.AMQP.VHost, Dialer: dialer}
	}
	return &healthcheck.TCPProber{Address: target.String(), Dialer: dialer}
}

// caPool reads a CA bundle (validation checked that it is readable). A file
// without a certificate yields an empty pool: every probe then fails with
// "certificate signed by unknown authority", which the status shows.
func caPool(file string) *x509.CertPool {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(file); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return pool
}
