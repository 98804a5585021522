package keepalived

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// seconds reads a keepalived timer: whole or decimal seconds.
func (c *converter) seconds(n *Node) (time.Duration, bool) {
	if len(n.Args) == 0 {
		c.warnf(n, "%s has no value: not carried", n.Keyword)
		return 0, false
	}
	c.extraArgs(n, 1)
	f, err := strconv.ParseFloat(n.Args[0], 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > float64(math.MaxInt64/int64(time.Second)) {
		c.warnf(n, "%s %s is not a number of seconds: not carried", n.Keyword, n.Args[0])
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Microsecond), true
}

// positiveSeconds reads a timer that lvsdr needs above zero into dst.
func (c *converter) positiveSeconds(n *Node, dst *opt[time.Duration], what string) {
	d, ok := c.seconds(n)
	switch {
	case !ok:
	case d == 0:
		c.warnf(n, "%s 0 not carried: lvsdr needs %s above zero", n.Keyword, what)
	default:
		*dst = some(d)
	}
}

// integer reads a whole-number argument between lo and hi.
func (c *converter) integer(n *Node, lo, hi int) (int, bool) {
	if len(n.Args) == 0 {
		c.warnf(n, "%s has no value: not carried", n.Keyword)
		return 0, false
	}
	c.extraArgs(n, 1)
	v, err := strconv.Atoi(n.Args[0])
	if err != nil || v < lo || v > hi {
		c.warnf(n, "%s %s is not a whole number from %d to %d: not carried", n.Keyword, n.Args[0], lo, hi)
		return 0, false
	}
	return v, true
}

// formatDuration writes whole seconds as "60s" rather than Go's "1m0s".
func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
