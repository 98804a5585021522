package ipvsctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// SyncRole is the state of an IPVS connection sync daemon: a master sends
// its connection table, a backup receives another director's.
type SyncRole uint32

// The kernel's IP_VS_STATE_MASTER and IP_VS_STATE_BACKUP.
const (
	SyncMaster SyncRole = 1
	SyncBackup SyncRole = 2
)

// String names the role as ipvsadm does.
func (r SyncRole) String() string {
	switch r {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("role%d", uint32(r))
}

// The kernel's defaults for a daemon started without a group, port or TTL
// (include/net/ip_vs.h: IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT).
var (
	DefaultSyncGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})
)

const (
	DefaultSyncPort uint16 = 8848
	DefaultSyncTTL  uint8  = 1
)

// MaxLen bounds the kernel keeps without clamping: a backup's buffer is at
// least 1024 bytes, and a datagram holds at most 65535 bytes with its IP
// and UDP headers.
const (
	minSyncMaxLen   = 1024
	maxSyncMaxLenV4 = 65535 - 20 - 8
	maxSyncMaxLenV6 = 65535 - 40 - 8
)

// SyncDaemon is one IPVS connection sync daemon of a network namespace (the
// kernel runs at most one per role). Zero Group, Port and TTL mean the
// kernel's defaults; zero MaxLen means the kernel sizes datagrams from the
// interface's MTU.
type SyncDaemon struct {
	Role SyncRole
	// Interface sends (master) or receives (backup) the multicast.
	Interface string
	// SyncID tags a master's messages; a backup keeps only its own ID, or
	// every message when it is 0.
	SyncID uint8
	Group  netip.Addr
	Port   uint16
	MaxLen uint16
	TTL    uint8
}

// String describes the daemon as one line for logs and errors.
func (d SyncDaemon) String() string {
	n := d.withDefaults()
	s := fmt.Sprintf("%s sync daemon on %s syncid %d group %s port %d ttl %d", d.Role, d.Interface, d.SyncID, n.Group, n.Port, n.TTL)
	if d.MaxLen != 0 {
		s += fmt.Sprintf(" maxlen %d", d.MaxLen)
	}
	return s
}

// Validate refuses what the kernel would refuse or silently change, so that
// a daemon read back compares equal to the one started.
func (d SyncDaemon) Validate() error {
	if d.Role != SyncMaster && d.Role != SyncBackup {
		return fmt.Errorf("sync daemon role %d: want master (1) or backup (2)", uint32(d.Role))
	}
	// The kernel's policy for IPVS_DAEMON_ATTR_MCAST_IFN: at most
	// IP_VS_IFNAME_MAXLEN-1 (15) bytes before the NUL.
	if d.Interface == "" || len(d.Interface) > 15 {
		return fmt.Errorf("%s sync daemon: interface name %q must have 1 to 15 bytes", d.Role, d.Interface)
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return fmt.Errorf("%s sync daemon: group %s is not a multicast address", d.Role, d.Group)
	}
	if d.MaxLen != 0 {
		hi := maxSyncMaxLenV4
		if d.Group.Is6() {
			hi = maxSyncMaxLenV6
		}
		if d.MaxLen < minSyncMaxLen || int(d.MaxLen) > hi {
			return fmt.Errorf("%s sync daemon: maxlen %d out of %d–%d", d.Role, d.MaxLen, minSyncMaxLen, hi)
		}
	}
	return nil
}

// ValidateDaemons checks each daemon and that no role appears twice (the
// kernel runs one master and one backup per namespace).
func ValidateDaemons(daemons []SyncDaemon) error {
	seen := map[SyncRole]bool{}
	for _, d := range daemons {
		if err := d.Validate(); err != nil {
			return err
		}
		if seen[d.Role] {
			return fmt.Errorf("two %s sync daemons: the kernel runs one per role", d.Role)
		}
		seen[d.Role] = true
	}
	return nil
}

// withDefaults fills what the kernel fills when a field is zero. MaxLen
// stays zero: the kernel derives it from the MTU.
func (d SyncDaemon) withDefaults() SyncDaemon {
	if !d.Group.IsValid() {
		d.Group = DefaultSyncGroup
	}
	if d.Port == 0 {
		d.Port = DefaultSyncPort
	}
	if d.TTL == 0 {
		d.TTL = DefaultSyncTTL
	}
	return d
}

// Satisfies reports whether the running daemon have does what d asks, with
// the kernel's defaults standing in for zero fields.
func (d SyncDaemon) Satisfies(have SyncDaemon) bool {
	w, h := d.withDefaults(), have.withDefaults()
	return w.Role == h.Role && w.Interface == h.Interface && w.SyncID == h.SyncID &&
		w.Group == h.Group && w.Port == h.Port && w.TTL == h.TTL &&
		(w.MaxLen == 0 || w.MaxLen == h.MaxLen)
}

// SyncSysctls are the settings under /proc/sys/net/ipv4/vs/ that keep the
// backup's copy of an idle connection fresh (measured on the real kernel:
// docs/benchmarks.md, "Connection sync"). The master decides when to sync:
// with "3 0" a connection is re-synced on its first packet once
// sync_refresh_period seconds (capped by the kernel at half the connection's
// timeout, at least 10 s) have passed since its last sync, whatever its
// packet count. The kernel's "3 50" re-syncs only every 50th packet, and
// sync_refresh_period alone changes nothing under it. Version 1 carries the
// master's timeout to the backup.
var SyncSysctls = map[string]string{
	"sync_threshold":      "3 0",
	"sync_refresh_period": "60",
	"sync_version":        "1",
}

// SyncDaemons starts, stops and lists the IPVS connection sync daemons of
// one network namespace. Implementations serialize their calls.
type SyncDaemons interface {
	// Daemons lists the running daemons, master first.
	Daemons() ([]SyncDaemon, error)
	// StartDaemon starts a daemon; ErrExists if one of its role runs.
	StartDaemon(SyncDaemon) error
	// StopDaemon stops the daemon of a role; ErrNotFound if none runs.
	StopDaemon(SyncRole) error
}

// PlanDaemons returns what to stop and then start so that the kernel runs
// exactly want (one daemon per role, see ValidateDaemons). A running daemon
// that satisfies its wanted one is kept: a director restarting after a crash
// adopts its daemons instead of dropping the sync stream. A running daemon
// with other settings, or of a role not wanted, is stopped; stop comes first
// because the kernel refuses a second daemon of a role.
func PlanDaemons(want, have []SyncDaemon) (start, stop []SyncDaemon) {
	for _, role := range []SyncRole{SyncMaster, SyncBackup} {
		w, wok := byRole(want, role)
		h, hok := byRole(have, role)
		switch {
		case wok && hok && w.Satisfies(h):
		case wok && hok:
			stop = append(stop, h)
			start = append(start, w)
		case wok:
			start = append(start, w)
		case hok:
			stop = append(stop, h)
		}
	}
	return start, stop
}

func byRole(daemons []SyncDaemon, role SyncRole) (SyncDaemon, bool) {
	i := slices.IndexFunc(daemons, func(d SyncDaemon) bool { return d.Role == role })
	if i < 0 {
		return SyncDaemon{}, false
	}
	return daemons[i], true
}

// ReconcileDaemons brings the kernel's sync daemons to want and returns
// what it started and stopped. A failure to stop or start one daemon does
// not stop the other role's; the error joins every failure.
func ReconcileDaemons(k SyncDaemons, want []SyncDaemon) (started, stopped []SyncDaemon, err error) {
	if err := ValidateDaemons(want); err != nil {
		return nil, nil, err
	}
	have, err := k.Daemons()
	if err != nil {
		return nil, nil, fmt.Errorf("list IPVS sync daemons: %w", err)
	}
	start, stop := PlanDaemons(want, have)
	var errs []error
	failed := map[SyncRole]bool{}
	for _, d := range stop {
		if err := k.StopDaemon(d.Role); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("stop %s: %w", d, err))
			failed[d.Role] = true
			continue
		}
		stopped = append(stopped, d)
	}
	for _, d := range start {
		if failed[d.Role] {
			continue
		}
		if err := k.StartDaemon(d); err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", d, err))
			continue
		}
		started = append(started, d)
	}
	return started, stopped, errors.Join(errs...)
}

// Generic netlink messages of the kernel's "IPVS" family for the sync
// daemons (include/uapi/linux/ip_vs.h). moby/ipvs has the command numbers
// but no daemon attributes.
const (
	ipvsGenlVersion = 1

	ipvsCmdNewDaemon = 9
	ipvsCmdDelDaemon = 10
	ipvsCmdGetDaemon = 11

	ipvsCmdAttrDaemon = 3

	ipvsDaemonAttrState       = 1
	ipvsDaemonAttrMcastIfn    = 2
	ipvsDaemonAttrSyncID      = 3
	ipvsDaemonAttrSyncMaxLen  = 4 // since Linux 4.3, like the four below
	ipvsDaemonAttrMcastGroup  = 5
	ipvsDaemonAttrMcastGroup6 = 6
	ipvsDaemonAttrMcastPort   = 7
	ipvsDaemonAttrMcastTTL    = 8

	nlaFNested   = 0x8000
	nlaTypeMask  = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nlaHeaderLen = 4
)

// Integers in netlink attributes are in host order (nla_get_u16 and
// friends); only the IPv4 group is in network order.
var native = binary.NativeEndian

func nlaAlign(n int) int { return (n + 3) &^ 3 }

// appendAttr appends one attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = native.AppendUint16(b, uint16(nlaHeaderLen+len(data)))
	b = native.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// encodeDaemonCmd returns the generic netlink header and attributes of a
// daemon command (the part after the netlink header). Stop needs only the
// role; start sends the 4.3 attributes only when set, so that older kernels,
// which do not know them, still start a daemon with their defaults.
func encodeDaemonCmd(cmd uint8, d SyncDaemon) []byte {
	msg := []byte{cmd, ipvsGenlVersion, 0, 0}
	if cmd == ipvsCmdGetDaemon {
		return msg
	}
	var attrs []byte
	attrs = appendAttr(attrs, ipvsDaemonAttrState, native.AppendUint32(nil, uint32(d.Role)))
	if cmd == ipvsCmdNewDaemon {
		attrs = appendAttr(attrs, ipvsDaemonAttrMcastIfn, append([]byte(d.Interface), 0))
		attrs = appendAttr(attrs, ipvsDaemonAttrSyncID, native.AppendUint32(nil, uint32(d.SyncID)))
		if d.MaxLen != 0 {
			attrs = appendAttr(attrs, ipvsDaemonAttrSyncMaxLen, native.AppendUint16(nil, d.MaxLen))
		}
		if d.Group.Is4() {
			g := d.Group.As4()
			attrs = appendAttr(attrs, ipvsDaemonAttrMcastGroup, g[:])
		} else if d.Group.Is6() {
			g := d.Group.As16()
			attrs = appendAttr(attrs, ipvsDaemonAttrMcastGroup6, g[:])
		}
		if d.Port != 0 {
			attrs = appendAttr(attrs, ipvsDaemonAttrMcastPort, native.AppendUint16(nil, d.Port))
		}
		if d.TTL != 0 {
			attrs = appendAttr(attrs, ipvsDaemonAttrMcastTTL, []byte{d.TTL})
		}
	}
	return appendAttr(msg, ipvsCmdAttrDaemon|nlaFNested, attrs)
}

// parseAttrs splits a run of netlink attributes by type (flags masked).
func parseAttrs(b []byte) (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	for len(b) > 0 {
		if len(b) < nlaHeaderLen {
			return nil, fmt.Errorf("truncated netlink attribute (%d bytes)", len(b))
		}
		n := int(native.Uint16(b))
		if n < nlaHeaderLen || n > len(b) {
			return nil, fmt.Errorf("netlink attribute of length %d in %d bytes", n, len(b))
		}
		out[native.Uint16(b[2:])&nlaTypeMask] = b[nlaHeaderLen:n]
		b = b[min(nlaAlign(n), len(b)):]
	}
	return out, nil
}

// decodeDaemon reads one message of a GET_DAEMON dump (the part after the
// netlink header): the kernel answers with one IPVS_CMD_NEW_DAEMON message
// per running daemon.
func decodeDaemon(msg []byte) (SyncDaemon, error) {
	if len(msg) < 4 {
		return SyncDaemon{}, fmt.Errorf("sync daemon message of %d bytes", len(msg))
	}
	top, err := parseAttrs(msg[4:])
	if err != nil {
		return SyncDaemon{}, fmt.Errorf("sync daemon message: %w", err)
	}
	nested, ok := top[ipvsCmdAttrDaemon]
	if !ok {
		return SyncDaemon{}, errors.New("sync daemon message without a daemon attribute")
	}
	a, err := parseAttrs(nested)
	if err != nil {
		return SyncDaemon{}, fmt.Errorf("sync daemon attributes: %w", err)
	}
	u32 := func(typ uint16, name string) (uint32, error) {
		v, ok := a[typ]
		if !ok || len(v) < 4 {
			return 0, fmt.Errorf("sync daemon without a %s", name)
		}
		return native.Uint32(v), nil
	}
	state, err := u32(ipvsDaemonAttrState, "state")
	if err != nil {
		return SyncDaemon{}, err
	}
	id, err := u32(ipvsDaemonAttrSyncID, "sync id")
	if err != nil {
		return SyncDaemon{}, err
	}
	if id > 255 {
		return SyncDaemon{}, fmt.Errorf("sync daemon with sync id %d (the sync protocol carries 0–255)", id)
	}
	d := SyncDaemon{Role: SyncRole(state), SyncID: uint8(id)}
	ifn := a[ipvsDaemonAttrMcastIfn]
	if i := slices.Index(ifn, 0); i >= 0 {
		ifn = ifn[:i]
	}
	d.Interface = string(ifn)
	if v := a[ipvsDaemonAttrSyncMaxLen]; len(v) >= 2 {
		d.MaxLen = native.Uint16(v)
	}
	if v := a[ipvsDaemonAttrMcastGroup]; len(v) == 4 {
		d.Group = netip.AddrFrom4([4]byte(v))
	} else if v := a[ipvsDaemonAttrMcastGroup6]; len(v) == 16 {
		d.Group = netip.AddrFrom16([16]byte(v))
	}
	if v := a[ipvsDaemonAttrMcastPort]; len(v) >= 2 {
		d.Port = native.Uint16(v)
	}
	if v := a[ipvsDaemonAttrMcastTTL]; len(v) >= 1 {
		d.TTL = v[0]
	}
	return d, nil
}
