// Package vrrp is lvsdr's VRRP router: the protocol that elects which of a
// pair (or more) of directors holds the VIPs, interoperable with keepalived.
//
// It speaks VRRP version 2 (RFC 3768, keepalived's default) and version 3
// (RFC 5798), over multicast (224.0.0.18) or unicast to each peer. A Router
// runs RFC 5798's state machine (every router starts as backup) in one
// goroutine on an injectable clock; the caller reads its state from Status
// and acts on its role changes from Transitions (bind the VIPs and send
// gratuitous ARP on becoming master, unbind them otherwise). The network is
// behind Conn: a raw IPv4 socket on Linux, an in-memory Segment in tests.
package vrrp
