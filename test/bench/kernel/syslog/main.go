// Command syslog is the syslog daemon of make bench-kernel's VM: it receives
// the datagrams syslog(3) sends to a unix socket (keepalived logs there) and
// writes each message on one line of stdout, after the time it arrived in
// Unix seconds with microseconds. The benchmark times keepalived from those
// lines ("Startup complete", "Reload complete") instead of polling the
// kernel, whose IPVS table costs a large part of a second to read in the
// emulated VM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	path := flag.String("socket", "/dev/log", "unix datagram socket to receive on")
	flag.Parse()
	if err := serve(*path); err != nil {
		fmt.Fprintln(os.Stderr, "syslog:", err)
		os.Exit(1)
	}
}

// serve receives on path until it is killed; each message is flushed at
// once, so a reader of the file sees it as soon as it came.
func serve(path string) error {
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	out := bufio.NewWriter(os.Stdout)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			return fmt.Errorf("receive on %s: %w", path, err)
		}
		at := time.Now()
		msg := strings.TrimRight(strings.ReplaceAll(string(buf[:n]), "\n", " "), " \x00")
		fmt.Fprintf(out, "%d.%06d %s\n", at.Unix(), at.Nanosecond()/1000, msg)
		out.Flush()
	}
}
