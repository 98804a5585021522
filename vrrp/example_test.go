package vrrp_test

import (
	"context"
	"log"
	"net/netip"
	"time"

	"github.com/lvsdr/lvsdr/internal/clock"
	"github.com/lvsdr/lvsdr/vrrp"
)

// How a director runs its router: the role drives the VIPs.
func Example() {
	cfg := vrrp.Config{
		VRID: 51, Version: 3, Interval: 100 * time.Millisecond,
		Priority: 150, Preempt: true,
		Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.100")},
	}
	conn, err := vrrp.Listen("eth0", netip.Addr{}) // the interface's primary address
	if err != nil {
		log.Fatal(err)
	}
	r, err := vrrp.New(cfg, conn, clock.Real{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop() // a master sends priority 0 as Run returns
	go r.Run(ctx)
	for t := range r.Transitions() {
		switch t.To {
		case vrrp.StateMaster: // also From == To: a split brain healed
			log.Printf("master (%s): bind the VIPs, send gratuitous ARP", t.Reason)
		default:
			log.Printf("%v (%s): unbind the VIPs", t.To, t.Reason)
		}
	}
}
