package healthcheck

import (
	"fmt"
	"strings"
)

// Key names one check of one real server in one service. The director keys
// its targets with it and the metrics label by its fields; it is comparable,
// so maps are keyed by it without joining strings.
type Key struct {
	Service    string
	RealServer string
	Check      string
}

// String formats the key as "amqp/rmq_node1/tcp": topology refuses '/' in
// names, so the form is unambiguous.
func (k Key) String() string {
	return k.Service + "/" + k.RealServer + "/" + k.Check
}

// MarshalText writes the key in its String form, so that JSON fields keyed
// by it (the control socket's check list) read as they always did.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads the String form back.
func (k *Key) UnmarshalText(b []byte) error {
	parts := strings.SplitN(string(b), "/", 3)
	if len(parts) != 3 {
		return fmt.Errorf("check key %q: want service/real_server/check", b)
	}
	*k = Key{Service: parts[0], RealServer: parts[1], Check: parts[2]}
	return nil
}
