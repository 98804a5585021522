package bgp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"golang.org/x/sys/unix"
)

// testRouter is the router's end of one BGP session on loopback: it
// answers the OPEN and hands the test every message it receives after.
// GoBGP's packet codec reads and writes the messages; the speaker under
// test is the real GoBGP server.
type testRouter struct {
	ln       net.Listener
	port     uint16
	messages chan *gobgp.BGPMessage
	conns    chan net.Conn
}

const routerAddr = "127.0.0.2"

// md5Listener signs the listener's sessions from 127.0.0.1 with password.
func md5Listener(password string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		sig := unix.TCPMD5Sig{Keylen: uint16(len(password))}
		sig.Addr.Family = unix.AF_INET
		copy(sig.Addr.Data[2:6], net.IPv4(127, 0, 0, 1).To4())
		copy(sig.Key[:], password)
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
		}); cerr != nil {
			return cerr
		}
		return err
	}
}

func newTestRouter(t *testing.T, password string) *testRouter {
	t.Helper()
	lc := net.ListenConfig{}
	if password != "" {
		lc.Control = md5Listener(password)
	}
	ln, err := lc.Listen(context.Background(), "tcp4", routerAddr+":0")
	if errors.Is(err, unix.ENOPROTOOPT) {
		t.Skip("this kernel has no TCP MD5 signatures")
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &testRouter{ln: ln, port: uint16(ln.Addr().(*net.TCPAddr).Port), messages: make(chan *gobgp.BGPMessage, 64), conns: make(chan net.Conn, 1)}
	t.Cleanup(func() { ln.Close() })
	go r.serve(t)
	return r
}

func readMessage(conn net.Conn) (*gobgp.BGPMessage, error) {
	header := make([]byte, gobgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(conn, header); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(header[16:18]))
	copy(buf, header)
	if _, err := io.ReadFull(conn, buf[len(header):]); err != nil {
		return nil, err
	}
	return gobgp.ParseBGPMessage(buf)
}

func (r *testRouter) serve(t *testing.T) {
	defer close(r.messages)
	conn, err := r.ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	r.conns <- conn
	if m, err := readMessage(conn); err != nil || m.Header.Type != gobgp.BGP_MSG_OPEN {
		t.Errorf("router: first message %v, %v; want an OPEN", m, err)
		return
	}
	caps := []gobgp.ParameterCapabilityInterface{gobgp.NewCapMultiProtocol(gobgp.RF_IPv4_UC), gobgp.NewCapFourOctetASNumber(65000)}
	open, err := gobgp.NewBGPOpenMessage(65000, 90, netip.MustParseAddr("10.9.0.254"),
		[]gobgp.OptionParameterInterface{gobgp.NewOptionParameterCapability(caps)})
	if err != nil {
		t.Error(err)
		return
	}
	for _, m := range []*gobgp.BGPMessage{open, gobgp.NewBGPKeepAliveMessage()} {
		b, err := m.Serialize()
		if err == nil {
			_, err = conn.Write(b)
		}
		if err != nil {
			t.Errorf("router: send: %v", err)
			return
		}
	}
	for {
		m, err := readMessage(conn)
		if err != nil {
			return
		}
		if m.Header.Type != gobgp.BGP_MSG_KEEPALIVE {
			r.messages <- m
		}
	}
}

// nextRouteUpdate returns the next UPDATE that announces or withdraws a
// route (an End-of-RIB carries neither), or the NOTIFICATION.
func (r *testRouter) nextRouteUpdate(t *testing.T) *gobgp.BGPMessage {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-r.messages:
			if !ok {
				t.Fatal("router: session closed")
			}
			if u, isUpdate := m.Body.(*gobgp.BGPUpdate); isUpdate && len(u.NLRI) == 0 && len(u.WithdrawnRoutes) == 0 {
				continue
			}
			return m
		case <-timeout:
			t.Fatal("router: nothing received in 30 s")
		}
	}
}

// hangUp ends the session from the router's side: a Cease, administrative
// shutdown, then the connection closed.
func (r *testRouter) hangUp(t *testing.T) {
	t.Helper()
	conn := <-r.conns
	b, err := gobgp.NewBGPNotificationMessage(gobgp.BGP_ERROR_CEASE, gobgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, nil).Serialize()
	if err == nil {
		_, err = conn.Write(b)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func waitEstablished(t *testing.T, g *GoBGP) PeerStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		peers, err := g.Peers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) == 1 && peers[0].State == StateEstablished {
			return peers[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not established in 30 s: %+v", peers)
		}
		select {
		case <-g.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestGoBGPAgainstARouter runs the real GoBGP speaker against a BGP
// session on loopback: it announces with the next hop asked for,
// withdraws, counts its UPDATEs and closes with a Cease.
func TestGoBGPAgainstARouter(t *testing.T) {
	for _, tc := range []struct{ name, password string }{{"plain", ""}, {"TCP MD5", "s3cret"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRouter(t, tc.password)
			g := NewGoBGP(slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx := context.Background()
			if err := g.Start(ctx, Config{ASN: 65001, RouterID: nextHop, HoldTime: 9 * time.Second}); err != nil {
				t.Fatal(err)
			}
			defer g.Stop(ctx)
			peer := Peer{Address: netip.MustParseAddr(routerAddr), ASN: 65000, Port: r.port, Password: tc.password}
			// Announced before the session is up, as the director does at
			// start: a path added just as a session comes up may miss it (the
			// race on the GoBGP type).
			if err := g.Announce(ctx, vip, nextHop); err != nil {
				t.Fatal(err)
			}
			if err := g.UpdatePeers(ctx, []Peer{peer}); err != nil {
				t.Fatal(err)
			}
			up := waitEstablished(t, g)
			if up.ASN != 65000 || up.Since.IsZero() {
				t.Errorf("established peer %+v", up)
			}
			m := r.nextRouteUpdate(t)
			u, ok := m.Body.(*gobgp.BGPUpdate)
			if !ok || len(u.NLRI) != 1 || u.NLRI[0].NLRI.String() != vip.String() {
				t.Fatalf("announcement: %+v, want %s", m.Body, vip)
			}
			var gotNextHop netip.Addr
			for _, a := range u.PathAttributes {
				if nh, ok := a.(*gobgp.PathAttributeNextHop); ok {
					gotNextHop = nh.Value
				}
			}
			if gotNextHop != nextHop {
				t.Errorf("next hop %v, want %v", gotNextHop, nextHop)
			}
			sent := waitEstablished(t, g).UpdatesSent

			if err := g.Withdraw(ctx, vip); err != nil {
				t.Fatal(err)
			}
			u, ok = r.nextRouteUpdate(t).Body.(*gobgp.BGPUpdate)
			if !ok || len(u.WithdrawnRoutes) != 1 || u.WithdrawnRoutes[0].NLRI.String() != vip.String() {
				t.Fatalf("withdrawal: %+v, want %s withdrawn", u, vip)
			}
			// The counter moves once the write has returned, which may be
			// just after the router read the message.
			for deadline := time.Now().Add(10 * time.Second); waitEstablished(t, g).UpdatesSent <= sent; {
				if time.Now().After(deadline) {
					t.Fatalf("UpdatesSent still %d after the withdrawal", sent)
				}
				time.Sleep(10 * time.Millisecond)
			}

			if err := g.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			n, ok := r.nextRouteUpdate(t).Body.(*gobgp.BGPNotification)
			if !ok || n.ErrorCode != gobgp.BGP_ERROR_CEASE {
				t.Fatalf("on Stop the router got %+v, want a Cease", n)
			}
		})
	}
}

func TestGoBGPReportsWhyASessionWentDown(t *testing.T) {
	r := newTestRouter(t, "")
	g := NewGoBGP(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := g.Start(ctx, Config{ASN: 65001, RouterID: nextHop}); err != nil {
		t.Fatal(err)
	}
	defer g.Stop(ctx)
	if err := g.UpdatePeers(ctx, []Peer{{Address: netip.MustParseAddr(routerAddr), ASN: 65000, Port: r.port}}); err != nil {
		t.Fatal(err)
	}
	up := waitEstablished(t, g)
	if up.LastError != "" {
		t.Errorf("a session that never went down has LastError %q", up.LastError)
	}
	r.hangUp(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		peers, err := g.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// GoBGP's list may show the session down a moment before its
		// event tells why: Changed is signalled once it does.
		p := peers[0]
		if p.State != StateEstablished && p.LastError != "" {
			if !strings.Contains(p.LastError, "notification") || !p.Since.After(up.Since) {
				t.Fatalf("after the router's Cease: %+v, want the notification as LastError and a later Since", p)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the router hung up: %+v, want the session down with the reason", p)
		}
		select {
		case <-g.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestGoBGPRefusesABadConfig(t *testing.T) {
	g := NewGoBGP(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := g.Start(context.Background(), Config{ASN: 65001}); err == nil {
		g.Stop(context.Background())
		t.Fatal("started without a router id")
	}
	if _, err := path(netip.MustParsePrefix("2001:db8::1/128"), netip.Addr{}); err == nil {
		t.Fatal("an IPv6 prefix was accepted")
	}
}

// TestControllerOnGoBGPStopsGracefully: the Controller on the real speaker
// announces, and on Stop the router gets the withdrawal before the Cease
// that closes the session.
func TestControllerOnGoBGPStopsGracefully(t *testing.T) {
	r := newTestRouter(t, "")
	c, err := Start(context.Background(), Options{
		Speaker: NewGoBGP(nil),
		Config:  Config{ASN: 65001, RouterID: nextHop},
		Peers:   []Peer{{Address: netip.MustParseAddr(routerAddr), ASN: 65000, Port: r.port}},
		Prefix:  vip,
		NextHop: nextHop,
		Linger:  10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Update(serving)
	m := r.nextRouteUpdate(t)
	if u, ok := m.Body.(*gobgp.BGPUpdate); !ok || len(u.NLRI) != 1 {
		t.Fatalf("first message %+v, want the announcement", m.Body)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = r.nextRouteUpdate(t)
	if u, ok := m.Body.(*gobgp.BGPUpdate); !ok || len(u.WithdrawnRoutes) != 1 {
		t.Fatalf("after Stop the router first got %+v, want the withdrawal", m.Body)
	}
	m = r.nextRouteUpdate(t)
	if n, ok := m.Body.(*gobgp.BGPNotification); !ok || n.ErrorCode != gobgp.BGP_ERROR_CEASE {
		t.Fatalf("then %+v, want a Cease", m.Body)
	}
	if s := c.Snapshot(); s.Announced || s.Reason != ReasonShutdown {
		t.Fatalf("snapshot %+v", s)
	}
}
