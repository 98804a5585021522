package healthcheck

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeBroker answers the AMQP protocol header with reply, and reports what
// it read and whether the client closed with FIN.
func fakeBroker(t *testing.T, reply []byte) (addr string, closedCleanly <-chan error) {
	t.Helper()
	ln := listen(t)
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		header := make([]byte, 8)
		if _, err := io.ReadFull(conn, header); err != nil || !bytes.Equal(header, amqpHeader) {
			done <- io.ErrUnexpectedEOF
			return
		}
		conn.Write(reply)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		done <- err
	}()
	return ln.Addr().String(), done
}

// connectionStart is the start of a Connection.Start method frame.
var connectionStart = []byte{1, 0, 0, 0, 0, 0, 8, 0, 10, 0, 10, 0, 9, 0, 0, 0xce}

func TestAMQPProbe(t *testing.T) {
	tests := []struct {
		name    string
		reply   []byte
		wantErr string
	}{
		{"Connection.Start", connectionStart, ""},
		{"a protocol mismatch", []byte("AMQP\x00\x00\x09\x01"), "refused AMQP 0-9-1"},
		{"another method", []byte{1, 0, 0, 0, 0, 0, 4, 0, 20, 0, 10}, "got method 20.10"},
		{"not AMQP", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), "not an AMQP method frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, closed := fakeBroker(t, tt.reply)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := (&AMQPProber{Address: addr}).Probe(ctx)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Probe = %v, want error %q", err, tt.wantErr)
			}
			if err := <-closed; err != io.EOF {
				t.Errorf("broker read %v after the probe, want io.EOF (FIN)", err)
			}
		})
	}
	t.Run("silent server times out", func(t *testing.T) {
		ln := listen(t)
		go func() {
			if c, err := ln.Accept(); err == nil {
				defer c.Close()
				time.Sleep(2 * time.Second)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := (&AMQPProber{Address: ln.Addr().String()}).Probe(ctx); err == nil {
			t.Errorf("a server that never answers passed")
		}
	})
}
