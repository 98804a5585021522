package metrics

import "strings"

// checkLabels are the labels of one check of one real server in one
// service.
type checkLabels struct {
	service, realServer, check string
}

// splitCheckKey reads the director's check key, "service/real_server/check"
// (director.CheckKey; topology names hold no '/'). The director package
// imports this one, so the key format is repeated here rather than shared.
func splitCheckKey(key string) checkLabels {
	parts := strings.SplitN(key, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return checkLabels{service: parts[0], realServer: parts[1], check: parts[2]}
}
