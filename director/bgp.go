package director

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
	"github.com/lvsdr/lvsdr/notify"
	"github.com/lvsdr/lvsdr/sysctl"
	"github.com/lvsdr/lvsdr/topology"
)

// Scale-out: with director.bgp, every director is active. The VIP is bound
// on lo, as on a real server, so the packets the routers send to this
// director (the next hop of its announcement) reach IPVS, while nothing
// answers ARP for the VIP on the network. The VIP /32 is announced over
// BGP (package bgp, GoBGP embedded) while this director can serve it, and
// withdrawn first on SIGTERM. Every director adds the same real servers in
// the same order with the same weights, and the mh (or sh) scheduler picks
// the same one for a flow on each, so a flow that the routers move from
// one director to another keeps its real server; sloppy_tcp lets the new
// director schedule it mid-stream.

// bgpVIPInterface is where the VIP is bound in BGP mode.
const bgpVIPInterface = "lo"

// bgpStopBound bounds the graceful withdrawal at shutdown.
const bgpStopBound = 5 * time.Second

// bgpSysctls are set under BGP: sloppy_tcp schedules a connection that
// arrives mid-stream (moved by the routers from another director), and
// arp_ignore/arp_announce keep this director from answering ARP for the
// VIP it holds on lo.
func bgpSysctls(topo *topology.Topology) [][2]string {
	if topo.Director.BGP == nil {
		return nil
	}
	iface := topo.Director.Interface
	return [][2]string{
		{"net.ipv4.vs.sloppy_tcp", "1"},
		{sysctl.Name("net", "ipv4", "conf", "all", "arp_ignore"), "1"},
		{sysctl.Name("net", "ipv4", "conf", "all", "arp_announce"), "2"},
		{sysctl.Name("net", "ipv4", "conf", iface, "arp_ignore"), "1"},
		{sysctl.Name("net", "ipv4", "conf", iface, "arp_announce"), "2"},
	}
}

// announcer is the BGP controller of a director, as the loop sees it.
type announcer struct {
	ctl *bgp.Controller
	// cfg and prefix are what it was started with, to tell on a reload
	// whether the peers alone changed.
	cfg    bgp.Config
	prefix netip.Prefix
	peers  []bgp.Peer
}

// bgpSettings maps director.bgp onto the speaker's configuration: the
// router id and the next hop default to this director's address on its
// interface.
func (l *loop) bgpSettings(topo *topology.Topology) (bgp.Config, []bgp.Peer, netip.Addr, error) {
	b := topo.Director.BGP
	own, err := l.VIP.ProbeSource(topo.Director.Interface, topo.VIP)
	if err != nil {
		return bgp.Config{}, nil, netip.Addr{}, fmt.Errorf("director.bgp: %w", err)
	}
	cfg := bgp.Config{ASN: b.ASN, RouterID: b.RouterID, HoldTime: b.HoldTime}
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = own
	}
	var peers []bgp.Peer
	for _, p := range b.Peers {
		peer := bgp.Peer{Address: p.Address, ASN: p.ASN, Port: p.Port, HoldTime: p.HoldTime}
		if p.PasswordFile != "" {
			secret, err := os.ReadFile(p.PasswordFile)
			if err != nil {
				return bgp.Config{}, nil, netip.Addr{}, fmt.Errorf("director.bgp peer %s: %w", p.Address, err)
			}
			peer.Password = strings.TrimSpace(string(secret))
		}
		peers = append(peers, peer)
	}
	return cfg, peers, own, nil
}

// startBGP starts announcing the VIP of topo, if it has director.bgp; a
// reload that changes only the peers keeps the sessions of the others.
func (l *loop) startBGP(topo *topology.Topology) error {
	if topo.Director.BGP == nil {
		l.stopBGP()
		return nil
	}
	cfg, peers, own, err := l.bgpSettings(topo)
	if err != nil {
		return err
	}
	prefix := netip.PrefixFrom(topo.VIP, 32)
	if a := l.bgp; a != nil && a.cfg == cfg && a.prefix == prefix {
		if !reflect.DeepEqual(a.peers, peers) {
			a.ctl.SetPeers(peers)
			a.peers = peers
		}
		return nil
	}
	l.stopBGP()
	speaker := l.Config.BGP
	if speaker == nil {
		speaker = func() bgp.Speaker { return bgp.NewGoBGP(l.Log) }
	}
	ctl, err := bgp.Start(context.Background(), bgp.Options{
		Speaker: speaker(), Config: cfg, Peers: peers, Prefix: prefix, NextHop: own,
		Clock: l.Clock, Log: l.Log, OnEvent: l.onBGPEvent,
	})
	if err != nil {
		return fmt.Errorf("director.bgp: %w", err)
	}
	l.bgp = &announcer{ctl: ctl, cfg: cfg, prefix: prefix, peers: peers}
	l.announcer.Store(ctl)
	l.Log.Info("BGP started", "asn", cfg.ASN, "router_id", cfg.RouterID, "next_hop", own, "prefix", prefix, "peers", len(peers))
	return nil
}

// stopBGP withdraws the VIP and closes the sessions: the routers stop
// sending this director new flows before it goes.
func (l *loop) stopBGP() {
	if l.bgp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bgpStopBound)
	defer cancel()
	if err := l.bgp.ctl.Stop(ctx); err != nil {
		l.Log.Warn("BGP stopped", "error", err)
	} else {
		l.Log.Info("BGP stopped: the VIP was withdrawn first")
	}
	l.bgp = nil
	l.announcer.Store(nil)
}

// reportBGP tells the controller whether this director can serve the VIP:
// the last IPVS write, and which services have their quorum.
func (l *loop) reportBGP(ipvsErr error, health Health) {
	if l.bgp == nil {
		return
	}
	h := bgp.Health{IPVSError: ipvsErr}
	for _, s := range l.topo.Services {
		h.Services = append(h.Services, bgp.ServiceHealth{Name: s.Name, Quorum: !quorumLost(s, health, l.drained)})
	}
	l.bgp.ctl.Update(h)
}

// onBGPEvent logs and notifies announcements, withdrawals and sessions; it
// runs on the controller's goroutine and must not block.
func (l *loop) onBGPEvent(e bgp.Event) {
	switch e.Type {
	case bgp.EventPeer:
		l.Log.Info("BGP session", "peer", e.Peer, "from", e.Previous, "to", e.State, "error", e.Error)
		l.hook.Load().Send(notify.Event{Kind: notify.KindBGP, Node: e.Peer.String(), State: string(e.State), Previous: string(e.Previous), Error: e.Error, At: e.At})
	default:
		l.Log.Info("BGP "+string(e.Type), "prefix", e.Prefix, "reason", e.Reason, "detail", e.Detail)
		l.hook.Load().Send(notify.Event{Kind: notify.KindBGP, State: string(e.Type), Error: strings.TrimSpace(string(e.Reason) + " " + e.Detail), At: e.At})
	}
}

// BGPStatus returns the BGP controller's snapshot, and false without
// director.bgp.
func (d *Director) BGPStatus() (bgp.Snapshot, bool) {
	c := d.announcer.Load()
	if c == nil {
		return bgp.Snapshot{}, false
	}
	return c.Snapshot(), true
}
