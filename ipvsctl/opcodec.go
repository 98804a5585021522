package ipvsctl

import (
	"encoding/binary"
	"fmt"
)

// The IPVS generic netlink commands and attributes that write the table,
// from include/uapi/linux/ip_vs.h (the daemon ones are in syncdaemon.go).
const (
	ipvsCmdNewService = 1
	ipvsCmdSetService = 2
	ipvsCmdDelService = 3
	ipvsCmdNewDest    = 5
	ipvsCmdSetDest    = 6
	ipvsCmdDelDest    = 7

	ipvsCmdAttrService = 1
	ipvsCmdAttrDest    = 2

	ipvsSvcAttrAF        = 1
	ipvsSvcAttrProtocol  = 2
	ipvsSvcAttrAddr      = 3
	ipvsSvcAttrPort      = 4
	ipvsSvcAttrFWMark    = 5
	ipvsSvcAttrSchedName = 6
	ipvsSvcAttrFlags     = 7
	ipvsSvcAttrTimeout   = 8
	ipvsSvcAttrNetmask   = 9

	ipvsDestAttrAddr       = 1
	ipvsDestAttrPort       = 2
	ipvsDestAttrFwdMethod  = 3
	ipvsDestAttrWeight     = 4
	ipvsDestAttrUpperThres = 5
	ipvsDestAttrLowerThres = 6

	afInet  = 2
	afInet6 = 10

	protoTCP = 6
	protoUDP = 17

	fwdMasq        = 0
	fwdTunnel      = 2
	fwdDirectRoute = 3

	svcFlagPersistent = 0x1
	connFwdMask       = 0x7
	fullNetmask       = 0xffffffff
)

var opCommands = [...]uint8{
	AddService:        ipvsCmdNewService,
	UpdateService:     ipvsCmdSetService,
	DeleteService:     ipvsCmdDelService,
	AddDestination:    ipvsCmdNewDest,
	UpdateDestination: ipvsCmdSetDest,
	DeleteDestination: ipvsCmdDelDest,
}

// encodeOp returns the generic netlink header and attributes of one write
// operation (the part after the netlink header). It sends what moby/ipvs
// sends for the same call (every attribute of a full entry, so that the
// kernel's parser accepts it for any command), which the tests check byte
// for byte.
func encodeOp(op Op) ([]byte, error) {
	if op.Kind < 0 || int(op.Kind) >= len(opCommands) {
		return nil, fmt.Errorf("unknown operation kind %d", op.Kind)
	}
	msg := []byte{opCommands[op.Kind], ipvsGenlVersion, 0, 0}
	svc := op.Service
	switch op.Kind {
	case DeleteService, AddDestination, UpdateDestination, DeleteDestination:
		// The kernel finds the service by its key alone here.
		svc = Service{Key: svc.Key}
	}
	msg = appendAttr(msg, ipvsCmdAttrService, serviceAttrs(svc))
	switch op.Kind {
	case AddDestination, UpdateDestination, DeleteDestination:
		msg = appendAttr(msg, ipvsCmdAttrDest, destinationAttrs(op.Destination))
	}
	return msg, nil
}

func serviceAttrs(s Service) []byte {
	var b []byte
	af, mask := uint16(afInet), uint32(fullNetmask)
	if s.Key.FWMark == 0 && s.Key.Address.Is6() {
		af, mask = afInet6, 128
	}
	b = appendAttr(b, ipvsSvcAttrAF, native.AppendUint16(nil, af))
	if s.Key.FWMark != 0 {
		b = appendAttr(b, ipvsSvcAttrFWMark, native.AppendUint32(nil, s.Key.FWMark))
	} else {
		proto := uint16(protoTCP)
		if s.Key.Protocol == UDP {
			proto = protoUDP
		}
		b = appendAttr(b, ipvsSvcAttrProtocol, native.AppendUint16(nil, proto))
		b = appendAttr(b, ipvsSvcAttrAddr, s.Key.Address.AsSlice())
		b = appendAttr(b, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, s.Key.Port))
	}
	b = appendAttr(b, ipvsSvcAttrSchedName, append([]byte(s.Scheduler), 0))
	// A firewall-mark service (the checks through the VIP) is written
	// without persistence or scheduler flags, as before.
	var flags, timeout uint32
	if s.Key.FWMark == 0 {
		if s.Persistence > 0 {
			flags, timeout = svcFlagPersistent, s.Persistence
		}
		flags |= s.SchedFlags & SchedFlagsMask
	}
	// struct ip_vs_flags: the flags, then the mask of those to set.
	b = appendAttr(b, ipvsSvcAttrFlags, native.AppendUint32(native.AppendUint32(nil, flags), 0xffffffff))
	b = appendAttr(b, ipvsSvcAttrTimeout, native.AppendUint32(nil, timeout))
	b = appendAttr(b, ipvsSvcAttrNetmask, native.AppendUint32(nil, mask))
	return b
}

func destinationAttrs(d Destination) []byte {
	var b []byte
	b = appendAttr(b, ipvsDestAttrAddr, d.Address.AsSlice())
	b = appendAttr(b, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, d.Port))
	fwd := uint32(fwdDirectRoute)
	switch d.Forwarding {
	case NAT:
		fwd = fwdMasq
	case Tunnel:
		fwd = fwdTunnel
	}
	b = appendAttr(b, ipvsDestAttrFwdMethod, native.AppendUint32(nil, fwd))
	b = appendAttr(b, ipvsDestAttrWeight, native.AppendUint32(nil, uint32(d.Weight)))
	b = appendAttr(b, ipvsDestAttrUpperThres, native.AppendUint32(nil, 0))
	b = appendAttr(b, ipvsDestAttrLowerThres, native.AppendUint32(nil, 0))
	return b
}
