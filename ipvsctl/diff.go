package ipvsctl

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// OpKind is one kind of kernel operation.
type OpKind int

// Kernel operations, named after the ipvsadm commands that do the same.
const (
	AddService OpKind = iota
	UpdateService
	DeleteService
	AddDestination
	UpdateDestination
	DeleteDestination
)

var opFlags = [...]string{
	AddService:        "-A",
	UpdateService:     "-E",
	DeleteService:     "-D",
	AddDestination:    "-a",
	UpdateDestination: "-e",
	DeleteDestination: "-d",
}

// Op is one kernel operation.
type Op struct {
	Kind    OpKind
	Service Service
	// Destination is set for the destination operations.
	Destination Destination
}

// String formats the operation as an ipvsadm command line, the language
// operators already read: "-a -t 192.168.0.100:5672 -r 192.168.0.2:5672 -g -w 1".
func (op Op) String() string {
	// Appends rather than fmt: a start logs one line per operation, and
	// a table of 10,000 real servers is 11,000 of them.
	b := make([]byte, 0, 64)
	b = append(b, opFlags[op.Kind]...)
	b = append(b, ' ')
	b = op.Service.Key.appendTo(b)
	switch op.Kind {
	case AddService, UpdateService:
		b = append(append(b, " -s "...), op.Service.Scheduler...)
		if op.Service.Persistence > 0 {
			b = strconv.AppendUint(append(b, " -p "...), uint64(op.Service.Persistence), 10)
		}
		if op.Service.SchedFlags != 0 {
			b = append(append(b, " -b "...), schedFlagNames(op.Service.Scheduler, op.Service.SchedFlags)...)
		}
	case AddDestination, UpdateDestination:
		b = op.Destination.Endpoint().AppendTo(append(b, " -r "...))
		b = append(append(append(b, ' '), forwardingFlag(op.Destination.Forwarding)...), " -w "...)
		b = strconv.AppendUint(b, uint64(op.Destination.Weight), 10)
	case DeleteDestination:
		b = op.Destination.Endpoint().AppendTo(append(b, " -r "...))
	}
	return string(b)
}

// SchedFlagsMask covers the scheduler flags of a service
// (IP_VS_SVC_F_SCHED1, 2 and 3).
const SchedFlagsMask = 0x38

// schedFlagNames names scheduler flags as ipvsadm's -b takes them.
func schedFlagNames(scheduler string, flags uint32) string {
	var names []string
	for i, bit := range []uint32{0x08, 0x10, 0x20} {
		if flags&bit == 0 {
			continue
		}
		name := fmt.Sprintf("flag-%d", i+1)
		switch {
		case (scheduler == "sh" || scheduler == "mh") && bit == 0x08:
			name = scheduler + "-fallback"
		case (scheduler == "sh" || scheduler == "mh") && bit == 0x10:
			name = scheduler + "-port"
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func forwardingFlag(f Forwarding) string {
	switch f {
	case NAT:
		return "-m"
	case Tunnel:
		return "-i"
	default:
		return "-g"
	}
}

// Diff returns the operations that turn actual into desired. Only the
// services in desired and in retired (services this director declared before
// and no longer does) are touched: any other service in actual belongs to
// someone else and is left alone. A changed weight or forwarding method is one
// destination update and a changed scheduler or persistence one service
// update, never a delete and add, so established connections survive.
// New destinations are added before stale ones are deleted, so a service is
// never left empty in between.
func Diff(desired, actual Table, retired []ServiceKey) []Op {
	var ops []Op
	// Both tables are sorted by key: walk them together.
	rest := actual
	for _, want := range desired {
		for len(rest) > 0 && rest[0].Service.Key.Compare(want.Service.Key) < 0 {
			rest = rest[1:]
		}
		if len(rest) == 0 || rest[0].Service.Key != want.Service.Key {
			ops = append(ops, Op{Kind: AddService, Service: want.Service})
			ops = append(ops, diffDestinations(want, VirtualServer{})...)
			continue
		}
		have := rest[0]
		if !want.Service.sameConfig(have.Service) {
			ops = append(ops, Op{Kind: UpdateService, Service: want.Service})
		}
		ops = append(ops, diffDestinations(want, have)...)
	}
	for _, key := range retired {
		if _, declared := desired.Find(key); declared {
			continue
		}
		if have, exists := actual.Find(key); exists {
			ops = append(ops, Op{Kind: DeleteService, Service: have.Service})
		}
	}
	return ops
}

// diffDestinations walks both sorted destination lists together.
func diffDestinations(want, have VirtualServer) []Op {
	var adds, updates, deletes []Op
	w, h := want.Destinations, have.Destinations
	for len(w) > 0 || len(h) > 0 {
		var c int
		switch {
		case len(w) == 0:
			c = 1
		case len(h) == 0:
			c = -1
		case w[0].Address == h[0].Address && w[0].Port == h[0].Port:
			c = 0 // the common case, cheaper than an ordering
		default:
			c = w[0].Endpoint().Compare(h[0].Endpoint())
		}
		switch {
		case c < 0:
			adds = append(adds, Op{Kind: AddDestination, Service: want.Service, Destination: w[0]})
			w = w[1:]
		case c > 0:
			deletes = append(deletes, Op{Kind: DeleteDestination, Service: want.Service, Destination: h[0]})
			h = h[1:]
		default:
			if w[0].Weight != h[0].Weight || w[0].Forwarding != h[0].Forwarding {
				updates = append(updates, Op{Kind: UpdateDestination, Service: want.Service, Destination: w[0]})
			}
			w, h = w[1:], h[1:]
		}
	}
	slices.SortStableFunc(adds, func(a, b Op) int { return cmp.Compare(a.Destination.Rank, b.Destination.Rank) })
	return append(append(adds, updates...), deletes...)
}
