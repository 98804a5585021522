//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain runs the test binary in one of its helper roles when asked to:
// the suite re-executes itself inside namespaces as a stand-in RabbitMQ
// listener or as clients.
func TestMain(m *testing.M) {
	switch os.Getenv("LVSDR_E2E_ROLE") {
	case "listen":
		os.Exit(listenRole())
	case "connect":
		os.Exit(connectRole())
	case "hold":
		os.Exit(holdRole())
	}
	os.Exit(m.Run())
}

// listenRole accepts on every address of its namespace (the VIP on lo
// among them), greets each client with the node's name and echoes lines,
// like a server that keeps long-lived connections.
func listenRole() int {
	node, port := os.Getenv("LVSDR_E2E_NODE"), os.Getenv("LVSDR_E2E_PORT")
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer conn.Close()
			fmt.Fprintf(conn, "%s\n", node)
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				fmt.Fprintf(conn, "%s\n", sc.Text())
			}
		}()
	}
}

// dialFrom connects to target from a given source address and reads the
// node's greeting.
func dialFrom(source, target string) (net.Conn, string, error) {
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		return nil, "", err
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("read greeting: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, strings.TrimSpace(line), nil
}

// connectRole opens one connection per source address and prints
// "SOURCE NODE" for each.
func connectRole() int {
	target := os.Getenv("LVSDR_E2E_TARGET")
	failed := 0
	for _, src := range strings.Split(os.Getenv("LVSDR_E2E_SOURCES"), ",") {
		conn, node, err := dialFrom(src, target)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s → %s: %v\n", src, target, err)
			failed++
			continue
		}
		conn.Close()
		fmt.Printf("%s %s\n", src, node)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// holdRole keeps one connection and exchanges a line every 200 ms, printing
// the node once and "ok N" every 10 exchanges; any failure ends it with
// "BROKEN".
func holdRole() int {
	conn, node, err := dialFrom(os.Getenv("LVSDR_E2E_SOURCE"), os.Getenv("LVSDR_E2E_TARGET"))
	if err != nil {
		fmt.Println("BROKEN", err)
		return 1
	}
	fmt.Println("node", node)
	r := bufio.NewReader(conn)
	for i := 1; ; i++ {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(conn, "ping %d\n", i); err != nil {
			fmt.Println("BROKEN", err)
			return 1
		}
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != fmt.Sprintf("ping %d", i) {
			fmt.Println("BROKEN", err, line)
			return 1
		}
		if i%10 == 0 {
			fmt.Println("ok", i)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
