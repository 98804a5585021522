package healthcheck

import "testing"

func TestKeySplitsBack(t *testing.T) {
	s, rs, c := SplitKey(Key("amqp", "rmq_node1", "tcp"))
	if s != "amqp" || rs != "rmq_node1" || c != "tcp" {
		t.Errorf("SplitKey(Key) = %q %q %q", s, rs, c)
	}
	if s, rs, c := SplitKey("amqp"); s != "amqp" || rs != "" || c != "" {
		t.Errorf("SplitKey of a short key = %q %q %q", s, rs, c)
	}
}
