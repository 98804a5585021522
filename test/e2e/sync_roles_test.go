//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The AMQP client of the connection-sync failover tests runs from init:
// TestMain (roles_test.go) dispatches the suite's other roles, and init
// runs before it.
func init() {
	switch os.Getenv("LVSDR_E2E_ROLE") {
	case "syncamqp":
		os.Exit(syncAMQPRole())
	}
}

// syncExchangeDeadline is how long one exchange may take: room for TCP's
// retransmissions while the VIP moves, far more than a failover needs.
const syncExchangeDeadline = 10 * time.Second

// syncAMQPRole is an AMQP 0-9-1 client of LVSDR_E2E_TARGET (host:port):
// one connection, a publisher channel in confirm mode publishing a
// numbered message every LVSDR_E2E_EVERY to a queue, and a consumer
// channel on that queue. It dials until LVSDR_E2E_WAIT has passed, then
// never again: a closed connection ends it with "CLOSED". It prints
// "connected LOCAL REMOTE UNIXNANO", every second "stat UNIXNANO PUBLISHED
// CONFIRMED NACKED CONSUMED", and "stall UNIXNANO MS" when confirms stopped
// for more than a second. On SIGTERM it stops publishing, waits for the
// outstanding confirms and for every confirmed message to be consumed, and
// prints "final published=N confirmed=N nacked=N consumed=N lost=N
// duplicates=N local=LOCAL".
func syncAMQPRole() int {
	every, err := time.ParseDuration(os.Getenv("LVSDR_E2E_EVERY"))
	if err != nil {
		fmt.Println("CLOSED LVSDR_E2E_EVERY:", err)
		return 1
	}
	wait, err := time.ParseDuration(os.Getenv("LVSDR_E2E_WAIT"))
	if err != nil {
		fmt.Println("CLOSED LVSDR_E2E_WAIT:", err)
		return 1
	}
	url := "amqp://guest:guest@" + os.Getenv("LVSDR_E2E_TARGET") + "/"
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	var conn *amqp.Connection
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Second) {
		conn, err = amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(5 * time.Second)})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			say("CLOSED no connection within %s: %v", wait, err)
			return 1
		}
	}
	local := conn.LocalAddr().String()
	say("connected %s %s %d", local, conn.RemoteAddr(), time.Now().UnixNano())
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	pub, err := conn.Channel()
	if err != nil {
		say("CLOSED publisher channel: %v", err)
		return 1
	}
	const queue = "lvsdr-e2e-sync"
	if _, err := pub.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		say("CLOSED declare %s: %v", queue, err)
		return 1
	}
	if err := pub.Confirm(false); err != nil {
		say("CLOSED confirm mode: %v", err)
		return 1
	}
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
	sub, err := conn.Channel()
	if err != nil {
		say("CLOSED consumer channel: %v", err)
		return 1
	}
	deliveries, err := sub.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		say("CLOSED consume: %v", err)
		return 1
	}

	// Published, confirmed (acked) and consumed message numbers; a
	// message's number is its delivery tag on the publisher channel.
	var published, nacked atomic.Int64
	var confirmedMu sync.Mutex
	confirmed := map[uint64]bool{}
	consumed := map[uint64]int{}
	lastConfirm := time.Now()
	go func() {
		for c := range confirms {
			now := time.Now()
			confirmedMu.Lock()
			if stall := now.Sub(lastConfirm); stall > time.Second {
				say("stall %d %d", now.UnixNano(), stall.Milliseconds())
			}
			lastConfirm = now
			if c.Ack {
				confirmed[c.DeliveryTag] = true
			} else {
				nacked.Add(1)
			}
			confirmedMu.Unlock()
		}
	}()
	go func() {
		for d := range deliveries {
			n, err := strconv.ParseUint(string(d.Body), 10, 64)
			if err != nil {
				say("CLOSED a message not ours: %q", d.Body)
				os.Exit(1)
			}
			confirmedMu.Lock()
			consumed[n]++
			confirmedMu.Unlock()
			d.Ack(false)
		}
	}()
	counts := func() (c, k int) {
		confirmedMu.Lock()
		defer confirmedMu.Unlock()
		return len(confirmed), len(consumed)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	tick := time.NewTicker(time.Second)
	send := time.NewTicker(every)
publishing:
	for {
		select {
		case err := <-closed:
			say("CLOSED %v", err)
			return 1
		case <-stop:
			break publishing
		case now := <-tick.C:
			c, k := counts()
			say("stat %d %d %d %d %d", now.UnixNano(), published.Load(), c, nacked.Load(), k)
		case <-send.C:
			n := published.Load() + 1
			ctx, cancel := context.WithTimeout(context.Background(), syncExchangeDeadline)
			err := pub.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte(strconv.FormatUint(uint64(n), 10))})
			cancel()
			if err != nil {
				say("CLOSED publish %d: %v", n, err)
				return 1
			}
			published.Store(n)
		}
	}
	// Every published message confirmed, every confirmed one consumed.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		c, k := counts()
		if int64(c)+nacked.Load() >= published.Load() && k >= c {
			break
		}
	}
	confirmedMu.Lock()
	lost, dup := 0, 0
	for n := range confirmed {
		if consumed[n] == 0 {
			lost++
		}
	}
	for _, times := range consumed {
		if times > 1 {
			dup++
		}
	}
	say("final published=%d confirmed=%d nacked=%d consumed=%d lost=%d duplicates=%d local=%s",
		published.Load(), len(confirmed), nacked.Load(), len(consumed), lost, dup, local)
	confirmedMu.Unlock()
	select {
	case err := <-closed:
		say("CLOSED %v", err)
		return 1
	default:
	}
	conn.Close()
	return 0
}
