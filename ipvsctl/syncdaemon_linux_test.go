package ipvsctl

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The request loop against this kernel's generic netlink controller, which
// every Linux has (IPVS is proven in the VM: test/e2e/syncd_test.go).
func TestSyncNetlinkRequestAgainstTheGenericNetlinkController(t *testing.T) {
	ctrl := &SyncNetlink{family: nl.GENL_ID_CTRL, timeout: 5 * time.Second}
	getFamily := func(name string) []byte {
		return appendAttr([]byte{nl.GENL_CTRL_CMD_GETFAMILY, nl.GENL_CTRL_VERSION, 0, 0},
			nl.GENL_CTRL_ATTR_FAMILY_NAME, append([]byte(name), 0))
	}

	// A dump: several messages, then NLMSG_DONE.
	dump, err := ctrl.request([]byte{nl.GENL_CTRL_CMD_GETFAMILY, nl.GENL_CTRL_VERSION, 0, 0}, unix.NLM_F_DUMP)
	if err != nil || len(dump) < 2 {
		t.Fatalf("dump of the families: %d messages, %v", len(dump), err)
	}
	// One answer, then the acknowledgement.
	one, err := ctrl.request(getFamily("nlctrl"), unix.NLM_F_ACK)
	if err != nil || len(one) != 1 {
		t.Fatalf("get nlctrl: %d messages, %v", len(one), err)
	}
	if a, err := parseAttrs(one[0][4:]); err != nil || string(a[nl.GENL_CTRL_ATTR_FAMILY_NAME]) != "nlctrl\x00" {
		t.Errorf("get nlctrl answered %q, %v", a[nl.GENL_CTRL_ATTR_FAMILY_NAME], err)
	}
	// The kernel's error number, as errors.Is sees it.
	if _, err := ctrl.request(getFamily("no-such-family"), unix.NLM_F_ACK); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("get of a missing family: %v, want ENOENT", err)
	}
	// A deadline already passed: ErrTimeout, not a wait.
	ctrl.timeout = time.Nanosecond
	if _, err := ctrl.request(getFamily("nlctrl"), unix.NLM_F_ACK); !errors.Is(err, ErrTimeout) {
		t.Errorf("with no time left: %v, want ErrTimeout", err)
	}
}
