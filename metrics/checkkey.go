package metrics

import "github.com/lvsdr/lvsdr/healthcheck"

// checkLabels are the labels of one check of one real server in one
// service.
type checkLabels struct {
	service, realServer, check string
}

// splitCheckKey reads the labels out of a check's healthcheck.Key.
func splitCheckKey(key string) checkLabels {
	s, rs, c := healthcheck.SplitKey(key)
	return checkLabels{service: s, realServer: rs, check: c}
}
