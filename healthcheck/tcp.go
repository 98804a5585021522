package healthcheck

import (
	"context"
	"fmt"
	"net"
	"time"
)

// finWait bounds how long a closing probe waits for the server's side of the
// shutdown before it lets go of the socket.
const finWait = 200 * time.Millisecond

// TCPProber passes when a TCP connection to Address opens in time
// (keepalived's TCP_CHECK).
type TCPProber struct {
	// Address is host:port.
	Address string
	// Dialer, when set, dials instead of a zero net.Dialer: a later check
	// marks its packets through Dialer.Control.
	Dialer *net.Dialer
}

// Probe connects and closes the connection with FIN, never RST: RabbitMQ
// logs every reset as an error, and a check every few seconds on every node
// would fill its log.
func (p *TCPProber) Probe(ctx context.Context) error {
	dialer := dialerOr(p.Dialer)
	conn, err := dialer.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return fmt.Errorf("tcp check: %w", err)
	}
	closeGracefully(conn.(*net.TCPConn))
	return nil
}

// closeGracefully sends FIN, then reads until the server closes its side or
// finWait passes, so no unread data is left in the socket: closing a socket
// with unread data makes the kernel answer with RST.
func closeGracefully(conn *net.TCPConn) {
	defer conn.Close()
	if err := conn.CloseWrite(); err != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(finWait))
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}
