package vrrp

import "errors"

// RejectError is why a received advert was discarded. Every reject is one of
// the sentinel errors below, so callers test with errors.Is and count by
// Reason.
type RejectError struct {
	// Reason is a short, stable label (a metric label value).
	Reason string
	msg    string
}

func (e *RejectError) Error() string { return e.msg }

// The reasons an advert is rejected. Received adverts failing validation wrap
// exactly one of these.
var (
	ErrMalformed        = &RejectError{"malformed", "malformed advert"}
	ErrBadVersion       = &RejectError{"bad_version", "advert of another VRRP version"}
	ErrBadType          = &RejectError{"bad_type", "not an advertisement"}
	ErrBadChecksum      = &RejectError{"bad_checksum", "bad checksum"}
	ErrBadTTL           = &RejectError{"bad_ttl", "IP TTL is not 255"}
	ErrVRIDMismatch     = &RejectError{"vrid_mismatch", "advert for another virtual router"}
	ErrAddressMismatch  = &RejectError{"address_mismatch", "address list differs from ours"}
	ErrIntervalMismatch = &RejectError{"interval_mismatch", "advert interval differs from ours (v2)"}
	ErrAuthMismatch     = &RejectError{"auth_mismatch", "authentication differs from ours (v2)"}
	ErrUnknownPeer      = &RejectError{"unknown_peer", "unicast advert from an address not among the peers"}
)

// RejectReasons lists every Reason, so that metrics can show zero counts.
var RejectReasons = []string{
	ErrMalformed.Reason, ErrBadVersion.Reason, ErrBadType.Reason, ErrBadChecksum.Reason,
	ErrBadTTL.Reason, ErrVRIDMismatch.Reason, ErrAddressMismatch.Reason,
	ErrIntervalMismatch.Reason, ErrAuthMismatch.Reason, ErrUnknownPeer.Reason,
}

// RejectReason returns the Reason label of a reject error, or "other".
func RejectReason(err error) string {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return "other"
}
