package topology

import "errors"

// ErrInvalid is wrapped by every error that reports a problem in a file.
var ErrInvalid = errors.New("invalid topology")

// Load reads, decodes and validates the topology file at path.
func Load(path string) (*Topology, error) { panic("not yet written") }

// Parse decodes and validates a topology; file names it in messages.
func Parse(file string, data []byte) (*Topology, error) { panic("not yet written") }
