// Command speaker is a stand-in director for test/bgp/run.sh: the bgp
// package's Controller on the real GoBGP speaker, with the director's
// health played by signals. It prints one line per event on stdout, each
// stamped with the wall clock in nanoseconds so the script can compare it
// with what the router saw.
//
//	SIGUSR1  every service below quorum (withdraw)
//	SIGUSR2  every service in quorum again (announce after the hold-down)
//	SIGTERM  graceful stop: withdraw, wait for the UPDATE, linger, exit
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lvsdr/lvsdr/bgp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "speaker:", err)
		os.Exit(1)
	}
}

func stamp() string { return fmt.Sprintf("%d", time.Now().UnixNano()) }

func run() error {
	var (
		asn      = flag.Uint("asn", 65001, "local AS")
		routerID = flag.String("router-id", "", "router id, and the next hop announced")
		peer     = flag.String("peer", "", "the router's address")
		peerASN  = flag.Uint("peer-asn", 65000, "the router's AS")
		password = flag.String("password", "", "TCP MD5 password")
		vip      = flag.String("vip", "", "the VIP, announced as a /32")
		hold     = flag.Duration("hold", 9*time.Second, "hold time")
		holdDown = flag.Duration("hold-down", bgp.DefaultHoldDown, "hold-down before re-announcing")
	)
	flag.Parse()
	id, err := netip.ParseAddr(*routerID)
	if err != nil {
		return fmt.Errorf("-router-id: %w", err)
	}
	router, err := netip.ParseAddr(*peer)
	if err != nil {
		return fmt.Errorf("-peer: %w", err)
	}
	addr, err := netip.ParseAddr(*vip)
	if err != nil {
		return fmt.Errorf("-vip: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)

	c, err := bgp.Start(context.Background(), bgp.Options{
		Speaker:  bgp.NewGoBGP(log),
		Config:   bgp.Config{ASN: uint32(*asn), RouterID: id, HoldTime: *hold},
		Peers:    []bgp.Peer{{Address: router, ASN: uint32(*peerASN), Password: *password}},
		Prefix:   netip.PrefixFrom(addr, 32),
		NextHop:  id,
		Log:      log,
		HoldDown: *holdDown,
		OnEvent: func(e bgp.Event) {
			switch e.Type {
			case bgp.EventPeer:
				fmt.Printf("%s peer %s %s (was %s) %s\n", stamp(), e.Peer, e.State, e.Previous, e.Error)
			default:
				fmt.Printf("%s %s %s reason=%s\n", stamp(), e.Type, e.Prefix, e.Reason)
			}
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("%s started\n", stamp())
	healthy := bgp.Health{Services: []bgp.ServiceHealth{{Name: "amqp", Quorum: true}}}
	c.Update(healthy)
	for s := range sigs {
		switch s {
		case syscall.SIGUSR1:
			c.Update(bgp.Health{Services: []bgp.ServiceHealth{{Name: "amqp"}}})
		case syscall.SIGUSR2:
			c.Update(healthy)
		default:
			fmt.Printf("%s stopping\n", stamp())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.Stop(ctx)
			cancel()
			fmt.Printf("%s exit\n", stamp())
			return err
		}
	}
	return nil
}
