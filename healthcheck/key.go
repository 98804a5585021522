package healthcheck

import "strings"

// Key names one check of one real server in one service: "amqp/rmq_node1/tcp".
// The director keys its targets with it and the metrics label by it; the
// names it joins hold no '/' (topology refuses them), so it splits back.
func Key(service, realServer, check string) string {
	return service + "/" + realServer + "/" + check
}

// SplitKey returns the parts of a Key; a part missing is empty.
func SplitKey(key string) (service, realServer, check string) {
	parts := strings.SplitN(key, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}
