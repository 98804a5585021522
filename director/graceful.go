package director

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lvsdr/lvsdr/ipvsctl"
	"github.com/lvsdr/lvsdr/topology"
)

// Graceful termination, as kube-proxy does it: a real server that a reload
// removes from a service is not deleted at once (expire_nodest_conn would
// cut every AMQP connection on it) but kept at weight 0, so it gets no new
// clients, until its active and inactive connections reach 0 or
// director.drain_timeout passes. It is part of the desired table, not a
// second writer: the loop adds the leaving destinations to it, and drops
// them once they have left, so the next reconcile deletes them.

// sweepInterval is how often leaving servers are looked at.
const sweepInterval = 2 * time.Second

// destKey names one destination of one service.
type destKey struct {
	service  ipvsctl.ServiceKey
	endpoint netip.AddrPort
}

// leaving is a destination on its way out.
type leaving struct {
	// service is the kernel's configuration of the service, to keep a
	// retired service as it was while its destinations leave.
	service  ipvsctl.Service
	dest     ipvsctl.Destination
	deadline time.Time
}

// leavingSet holds the destinations on their way out.
type leavingSet map[destKey]leaving

// has reports whether the destination of op is leaving.
func (s leavingSet) has(svc ipvsctl.ServiceKey, dst ipvsctl.Destination) bool {
	_, ok := s[destKey{svc, dst.Endpoint()}]
	return ok
}

// addTo adds the leaving destinations, at weight 0, to a desired table,
// with their service if it is retiring; one the file lists again is simply
// desired as the file says. Each service touched is sorted once.
func (s leavingSet) addTo(t ipvsctl.Table) ipvsctl.Table {
	if len(s) == 0 {
		return t
	}
	byService := map[ipvsctl.ServiceKey][]leaving{}
	for k, l := range s {
		byService[k.service] = append(byService[k.service], l)
	}
	for i := range t {
		vs := &t[i]
		add := byService[vs.Service.Key]
		if len(add) == 0 {
			continue
		}
		delete(byService, vs.Service.Key)
		present := make(map[netip.AddrPort]bool, len(vs.Destinations))
		for _, d := range vs.Destinations {
			present[d.Endpoint()] = true
		}
		for _, l := range add {
			if !present[l.dest.Endpoint()] {
				vs.Destinations = append(vs.Destinations, l.dest)
			}
		}
	}
	for _, add := range byService {
		vs := ipvsctl.VirtualServer{Service: add[0].service}
		for _, l := range add {
			vs.Destinations = append(vs.Destinations, l.dest)
		}
		t = append(t, vs)
	}
	t.Sort()
	return t
}

// startLeaving records the destinations on their way out: in every service
// that stays, those the kernel has that the new topology no longer lists;
// in every retired service, all of them, the service staying until they
// have left. The firewall-mark services of the checks carry no clients and
// go at once.
func (l *loop) startLeaving(next *topology.Topology, kernel ipvsctl.Table, retired []ipvsctl.ServiceKey) {
	if next.Director.DrainTimeout <= 0 {
		return
	}
	deadline := l.Clock.Now().Add(next.Director.DrainTimeout)
	for _, s := range next.Services {
		key := serviceKey(next, s)
		delete(l.retiring, key) // declared again
		vs, ok := kernel.Find(key)
		if !ok {
			continue
		}
		listed := make(map[netip.Addr]bool, len(s.RealServers))
		for _, rs := range next.Members(s) {
			listed[rs.Address] = true
		}
		for _, dst := range vs.Destinations {
			if !listed[dst.Address] {
				l.leave(vs.Service, dst, deadline)
			}
		}
	}
	for _, key := range retired {
		vs, ok := kernel.Find(key)
		if !ok || key.FWMark != 0 || len(vs.Destinations) == 0 {
			continue
		}
		l.retiring[key] = true
		l.Log.Info("service retired: kept until its real servers have left", "service", key.String(), "deadline", deadline)
		for _, dst := range vs.Destinations {
			l.leave(vs.Service, dst, deadline)
		}
	}
}

// leave records one leaving destination, unless it is already leaving.
func (l *loop) leave(svc ipvsctl.Service, dst ipvsctl.Destination, deadline time.Time) {
	k := destKey{svc.Key, dst.Endpoint()}
	if _, ok := l.leaving[k]; ok {
		return
	}
	svc.Stats, dst.Weight, dst.Stats = nil, 0, nil
	l.leaving[k] = leaving{service: svc, dest: dst, deadline: deadline}
	l.Log.Info("real server leaving: weight 0 until its connections end", "service", svc.Key.String(), "real_server", dst.Endpoint(), "deadline", deadline)
}

// deletable returns the retired services that can be deleted now: those not
// waiting for their real servers to leave.
func (l *loop) deletable(retired []ipvsctl.ServiceKey) []ipvsctl.ServiceKey {
	return slices.DeleteFunc(slices.Clone(retired), func(k ipvsctl.ServiceKey) bool { return l.retiring[k] })
}

// emptiedRetiring returns the retiring services none of whose real servers
// is leaving any more: the next reconcile deletes them.
func (l *loop) emptiedRetiring() []ipvsctl.ServiceKey {
	stillLeaving := map[ipvsctl.ServiceKey]bool{}
	for k := range l.leaving {
		stillLeaving[k.service] = true
	}
	var out []ipvsctl.ServiceKey
	for _, k := range l.retiringKeys() {
		if !stillLeaving[k] {
			out = append(out, k)
		}
	}
	return out
}

func (l *loop) retiringKeys() []ipvsctl.ServiceKey {
	keys := make([]ipvsctl.ServiceKey, 0, len(l.retiring))
	for k := range l.retiring {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvsctl.ServiceKey.Compare)
	return keys
}

// sweepLeaving forgets the leaving destinations whose connections have
// ended or whose time is up, so the next reconcile deletes them. It
// returns how many it forgot: their deletions are scheduled, not drift.
func (l *loop) sweepLeaving() int {
	now := l.Clock.Now()
	conns := map[ipvsctl.ServiceKey]map[netip.AddrPort]ipvsctl.Destination{}
	swept := 0
	for k, lv := range l.leaving {
		dests, read := conns[k.service]
		if !read {
			list, err := l.Kernel.Destinations(k.service)
			if err != nil {
				// Kept until the kernel answers again (nil: not read).
				l.Log.Warn("read connections of leaving real servers", "service", k.service.String(), "error", err)
			} else {
				dests = make(map[netip.AddrPort]ipvsctl.Destination, len(list))
				for _, d := range list {
					dests[d.Endpoint()] = d
				}
			}
			conns[k.service] = dests
		}
		if dests == nil {
			// Not read: kept, unless its time is up, when the next
			// reconcile deletes it as scheduled.
			if now.After(lv.deadline) {
				delete(l.leaving, k)
				swept++
			}
			continue
		}
		d, inKernel := dests[k.endpoint]
		switch {
		case !inKernel:
			// Gone already (deleted by hand, or its service went): nothing
			// left to delete.
			delete(l.leaving, k)
			continue
		case now.After(lv.deadline):
			l.Log.Info("real server left: drain timeout", "service", k.service.String(), "real_server", k.endpoint)
		case d.Stats != nil && d.Stats.ActiveConns+d.Stats.InactiveConns == 0:
			l.Log.Info("real server left: no connections", "service", k.service.String(), "real_server", k.endpoint)
		default:
			continue
		}
		delete(l.leaving, k)
		swept++
	}
	return swept
}

// nextSweep is when the resync timer fires next: sooner while servers are
// leaving, or while a returning director waits for its connection table.
func (l *loop) nextSweep() time.Duration {
	holding := l.role != nil && !l.sync.since.IsZero() && !l.sync.warm
	if (len(l.leaving) > 0 || holding) && sweepInterval < l.topo.Director.ResyncInterval {
		return sweepInterval
	}
	return l.topo.Director.ResyncInterval
}
