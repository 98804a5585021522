package keepalived

import (
	"fmt"
	"slices"
	"strings"
)

// notifyScript is one of keepalived's notify_up, notify_down, quorum_up or
// quorum_down scripts, with the events of lvsdr's hook that stand for it.
type notifyScript struct {
	node *Node
	argv []string
	// when says which of keepalived's events ran it; filter, which
	// environment of lvsdr's hook tells the same event.
	when, filter string
}

// notifyScript reads `notify_up SCRIPT [USER [GROUP]]` and its kin. when
// and filter describe the event it is run on, in keepalived's and lvsdr's
// terms.
func (c *converter) notifyScript(n *Node, when, filter string) {
	if len(n.Args) == 0 {
		c.warnf(n, "%s has no script: not carried", n.Keyword)
		return
	}
	// lvsdr's hook is a program and its arguments, run without a shell.
	argv := strings.Fields(n.Args[0])
	if len(argv) == 0 {
		c.warnf(n, "%s has an empty script: not carried", n.Keyword)
		return
	}
	if strings.ContainsAny(n.Args[0], "|;&<>$`*?(){}") {
		c.warnf(n, "%s %q: lvsdr runs its hook without a shell, so these shell characters reach the program as they are; wrap the line in a script", n.Keyword, n.Args[0])
	}
	if len(n.Args) > 1 {
		c.warnf(n, "%s: running it as user %s not carried: lvsdr runs its hook as the director's user", n.Keyword, strings.Join(n.Args[1:], " "))
	}
	c.notifies = append(c.notifies, notifyScript{node: n, argv: argv, when: when, filter: filter})
}

// notifyHook chooses director.notify: lvsdr runs one hook for every event,
// so the scripts of keepalived.conf are carried when they are one and the
// same; the warnings say how the hook tells the events apart.
func (c *converter) notifyHook() {
	var distinct [][]string
	for _, ns := range c.notifies {
		if !slices.ContainsFunc(distinct, func(argv []string) bool { return slices.Equal(argv, ns.argv) }) {
			distinct = append(distinct, ns.argv)
		}
	}
	if len(distinct) == 1 {
		c.notify = distinct[0]
	}
	for _, ns := range c.notifies {
		script := strings.Join(ns.argv, " ")
		if len(distinct) == 1 {
			c.warnf(ns.node, "%s %s carried as director.notify, which differs: keepalived runs it %s; lvsdr runs it on every check, quorum, maintenance and VRRP role event, with no arguments added and what changed in its environment (LVSDR_EVENT, LVSDR_STATE, LVSDR_SERVICE, LVSDR_NODE...): make it act only when %s", ns.node.Keyword, script, ns.when, ns.filter)
			continue
		}
		c.warnf(ns.node, "%s %s not carried: lvsdr runs one hook, director.notify, for every event, and keepalived.conf has %d different scripts; keepalived ran this one %s: write a hook that runs it when %s, and set it as director.notify", ns.node.Keyword, script, len(distinct), ns.when, ns.filter)
	}
}

// realServerNotify is the event of a real server's notify_up or
// notify_down, in keepalived's and lvsdr's terms.
func realServerNotify(keyword, rsName, service string) (when, filter string) {
	state, verb := "up", "comes up"
	if keyword == "notify_down" {
		state, verb = "down", "goes down"
	}
	return fmt.Sprintf("when real server %s of %s %s, with only the arguments written after it", rsName, service, verb),
		fmt.Sprintf("LVSDR_EVENT=check, LVSDR_STATE=%s, LVSDR_SERVICE=%s and LVSDR_NODE=%s (an event comes per check of the server)", state, service, rsName)
}

// quorumNotify is the event of a virtual_server's quorum_up or
// quorum_down.
func quorumNotify(keyword, service string) (when, filter string) {
	state, verb := "regained", "regains"
	if keyword == "quorum_down" {
		state, verb = "lost", "loses"
	}
	return fmt.Sprintf("when %s %s its quorum, with only the arguments written after it", service, verb),
		fmt.Sprintf("LVSDR_EVENT=quorum, LVSDR_STATE=%s and LVSDR_SERVICE=%s", state, service)
}

// roleNotify is the event of a vrrp_instance's notify_master,
// notify_backup, notify_fault or notify, in keepalived's and lvsdr's terms.
func roleNotify(keyword, instance string) (when, filter string) {
	if keyword == "notify" {
		return fmt.Sprintf("on every VRRP state change of instance %s, adding INSTANCE %s and the new state (MASTER, BACKUP, FAULT) and priority to its arguments", instance, instance),
			"LVSDR_EVENT=role, with the new role in LVSDR_STATE (master, backup or fault, in lowercase)"
	}
	state := strings.TrimPrefix(keyword, "notify_")
	return fmt.Sprintf("when instance %s becomes %s, with only the arguments written after it", instance, strings.ToUpper(state)),
		fmt.Sprintf("LVSDR_EVENT=role and LVSDR_STATE=%s", state)
}
