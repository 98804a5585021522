package healthcheck

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpHeader opens an AMQP 0-9-1 connection.
var amqpHeader = []byte("AMQP\x00\x00\x09\x01")

// AMQPProber passes when the broker answers an AMQP 0-9-1 protocol header
// with Connection.Start, which proves the node's AMQP listener is up and
// speaking the protocol, not only accepting TCP. With a username it goes on
// to open the vhost with those credentials and closes the connection
// cleanly.
type AMQPProber struct {
	// Address is host:port.
	Address string
	// Username, PasswordFile and VHost ask for a full open; without a
	// username only the header is exchanged.
	Username     string
	PasswordFile string
	VHost        string
	// Dialer, when set, dials instead of a zero net.Dialer.
	Dialer *net.Dialer
}

// Probe runs one check.
func (p *AMQPProber) Probe(ctx context.Context) error {
	dialer := dialerOr(p.Dialer)
	if p.Username != "" {
		return p.open(ctx, dialer)
	}
	conn, err := dialer.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return fmt.Errorf("amqp check: %w", err)
	}
	tcp := conn.(*net.TCPConn)
	defer closeGracefully(tcp)
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if _, err := conn.Write(amqpHeader); err != nil {
		return fmt.Errorf("amqp check %s: %w", p.Address, err)
	}
	// A method frame: type 1, channel 0, size, payload (class 10 method 10
	// is Connection.Start), frame end 0xCE.
	var header [7]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		return fmt.Errorf("amqp check %s: no answer to the protocol header: %w", p.Address, err)
	}
	if bytes.HasPrefix(header[:], []byte("AMQP")) {
		return fmt.Errorf("amqp check %s: the server refused AMQP 0-9-1 (it answered with its own protocol header)", p.Address)
	}
	size := binary.BigEndian.Uint32(header[3:7])
	if header[0] != 1 || size < 4 || size > 1<<20 {
		return fmt.Errorf("amqp check %s: not an AMQP method frame (type %d, size %d)", p.Address, header[0], size)
	}
	var method [4]byte
	if _, err := io.ReadFull(conn, method[:]); err != nil {
		return fmt.Errorf("amqp check %s: %w", p.Address, err)
	}
	if class, id := binary.BigEndian.Uint16(method[:2]), binary.BigEndian.Uint16(method[2:]); class != 10 || id != 10 {
		return fmt.Errorf("amqp check %s: got method %d.%d, want Connection.Start (10.10)", p.Address, class, id)
	}
	return nil
}

// open logs in with amqp091-go and closes with Connection.Close, so the
// broker logs a clean close rather than a dropped client.
func (p *AMQPProber) open(ctx context.Context, dialer *net.Dialer) error {
	password, err := os.ReadFile(p.PasswordFile)
	if err != nil {
		return fmt.Errorf("amqp check: password: %w", err)
	}
	vhost := p.VHost
	if vhost == "" {
		vhost = "/"
	}
	u := url.URL{Scheme: "amqp", Host: p.Address, User: url.UserPassword(p.Username, strings.TrimRight(string(password), "\r\n"))}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	conn, err := amqp.DialConfig(u.String(), amqp.Config{
		Vhost:     vhost,
		Heartbeat: 0,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				c.SetDeadline(deadline)
			}
			return c, err
		},
		Properties: amqp.Table{"connection_name": "lvsdr health check"},
	})
	if err != nil {
		return fmt.Errorf("amqp check %s vhost %s: %w", p.Address, vhost, err)
	}
	if err := conn.Close(); err != nil {
		return fmt.Errorf("amqp check %s: close: %w", p.Address, err)
	}
	return nil
}
