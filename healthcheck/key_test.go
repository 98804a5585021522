package healthcheck

import (
	"encoding/json"
	"testing"
)

func TestKeyRoundTripsThroughText(t *testing.T) {
	k := Key{"amqp", "rmq_node1", "tcp"}
	b, err := json.Marshal(map[string]Key{"k": k})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"k":"amqp/rmq_node1/tcp"}` {
		t.Errorf("marshalled %s", b)
	}
	var back map[string]Key
	if err := json.Unmarshal(b, &back); err != nil || back["k"] != k {
		t.Errorf("unmarshalled %v, %v", back, err)
	}
	var bad Key
	if err := bad.UnmarshalText([]byte("amqp/rs1")); err == nil {
		t.Error("a key with two parts was accepted")
	}
}
