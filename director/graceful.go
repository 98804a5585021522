package director

import (
	"slices"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// Graceful termination, as kube-proxy does it: a real server that a reload
// removes from a service is not deleted at once (expire_nodest_conn would
// cut every AMQP connection on it) but kept at weight 0, so it gets no new
// clients, until its active and inactive connections reach 0 or
// director.drain_timeout passes. Only Run touches this state.

// sweepInterval is how often leaving servers are looked at.
const sweepInterval = 2 * time.Second

// leaving is a destination on its way out.
type leaving struct {
	key ipvsctl.ServiceKey
	// service is the kernel's configuration of the service, to keep a
	// retired service as it was while its destinations leave.
	service  ipvsctl.Service
	dest     ipvsctl.Destination
	deadline time.Time
}

// startLeaving records the destinations on their way out: in every service
// that stays, those the kernel has that the new topology no longer lists;
// in every retired service, all of them, the service staying until they
// have left. The firewall-mark services of the checks carry no clients and
// go at once.
func (d *Director) startLeaving(next *topology.Topology, kernel ipvsctl.Table, retired []ipvsctl.ServiceKey) {
	if next.Director.DrainTimeout <= 0 {
		return
	}
	deadline := d.Clock.Now().Add(next.Director.DrainTimeout)
	for _, s := range next.Services {
		key := ipvsctl.Key(next, s)
		delete(d.retiring, key) // declared again
		vs, ok := kernel.Find(key)
		if !ok {
			continue
		}
		members := next.Members(s)
		for _, dst := range vs.Destinations {
			listed := slices.ContainsFunc(members, func(rs topology.RealServer) bool { return rs.Address == dst.Address })
			if !listed {
				d.leave(vs.Service, dst, deadline)
			}
		}
	}
	for _, key := range retired {
		vs, ok := kernel.Find(key)
		if !ok || key.FWMark != 0 || len(vs.Destinations) == 0 {
			continue
		}
		if d.retiring == nil {
			d.retiring = map[ipvsctl.ServiceKey]bool{}
		}
		d.retiring[key] = true
		d.Log.Info("service retired: kept until its real servers have left", "service", key.String(), "deadline", deadline)
		for _, dst := range vs.Destinations {
			d.leave(vs.Service, dst, deadline)
		}
	}
}

// leave records one leaving destination, unless it is already leaving.
func (d *Director) leave(svc ipvsctl.Service, dst ipvsctl.Destination, deadline time.Time) {
	if slices.ContainsFunc(d.leaving, func(l leaving) bool { return l.key == svc.Key && l.dest.Endpoint() == dst.Endpoint() }) {
		return
	}
	svc.Stats, dst.Weight, dst.Stats = nil, 0, nil
	d.leaving = append(d.leaving, leaving{key: svc.Key, service: svc, dest: dst, deadline: deadline})
	d.Log.Info("real server leaving: weight 0 until its connections end", "service", svc.Key.String(), "real_server", dst.Endpoint(), "deadline", deadline)
}

// withLeaving adds the leaving destinations, at weight 0, to a desired
// table, with their service if it is retiring; one the file lists again is
// simply desired as the file says.
func (d *Director) withLeaving(t ipvsctl.Table) ipvsctl.Table {
	for _, l := range d.leaving {
		t = t.WithDestination(l.service, l.dest)
	}
	return t
}

// deletable returns the retired services that can be deleted now: those not
// waiting for their real servers to leave.
func (d *Director) deletable(retired []ipvsctl.ServiceKey) []ipvsctl.ServiceKey {
	return slices.DeleteFunc(slices.Clone(retired), func(k ipvsctl.ServiceKey) bool { return d.retiring[k] })
}

// emptiedRetiring returns the retiring services none of whose real servers
// is leaving any more: the next reconcile deletes them.
func (d *Director) emptiedRetiring() []ipvsctl.ServiceKey {
	var out []ipvsctl.ServiceKey
	for _, k := range d.retiringKeys() {
		if !slices.ContainsFunc(d.leaving, func(l leaving) bool { return l.key == k }) {
			out = append(out, k)
		}
	}
	return out
}

func (d *Director) retiringKeys() []ipvsctl.ServiceKey {
	keys := make([]ipvsctl.ServiceKey, 0, len(d.retiring))
	for k := range d.retiring {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvsctl.ServiceKey.Compare)
	return keys
}

// sweepLeaving forgets the leaving destinations whose connections have
// ended or whose time is up, so the next reconcile deletes them.
func (d *Director) sweepLeaving() {
	now := d.Clock.Now()
	conns := map[ipvsctl.ServiceKey][]ipvsctl.Destination{}
	kept := d.leaving[:0]
	for _, l := range d.leaving {
		dests, read := conns[l.key]
		if !read {
			var err error
			if dests, err = d.Kernel.Destinations(l.key); err != nil {
				d.Log.Warn("read connections of leaving real servers", "service", l.key.String(), "error", err)
			}
			conns[l.key] = dests
		}
		i := slices.IndexFunc(dests, func(x ipvsctl.Destination) bool { return x.Endpoint() == l.dest.Endpoint() })
		switch {
		case now.After(l.deadline):
			d.Log.Info("real server left: drain timeout", "service", l.key.String(), "real_server", l.dest.Endpoint())
		case i < 0:
			// Gone already (deleted by hand, or its service went).
		case dests[i].Stats != nil && dests[i].Stats.ActiveConns+dests[i].Stats.InactiveConns == 0:
			d.Log.Info("real server left: no connections", "service", l.key.String(), "real_server", l.dest.Endpoint())
		default:
			kept = append(kept, l)
			continue
		}
	}
	d.leaving = kept
}

// nextSweep is when the resync timer fires next: sooner while servers are
// leaving.
func (d *Director) nextSweep(topo *topology.Topology) time.Duration {
	if len(d.leaving) > 0 && sweepInterval < topo.Director.ResyncInterval {
		return sweepInterval
	}
	return topo.Director.ResyncInterval
}
