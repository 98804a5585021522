package topology

import (
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// notify decodes the hook run on state changes. The command is checked at
// validation on the director, so that a typo is found then rather than at
// the first failure it was meant to report.
func (d *decoder) notify(n *yaml.Node, path string) *Notify {
	h := &Notify{Timeout: DefaultNotifyTimeout}
	present := d.mapping(n, path, fields{
		"command": func(v *yaml.Node) {
			items := d.sequence(v, path+".command")
			for _, item := range items {
				var arg string
				d.str(item, path+".command[]", &arg)
				h.Command = append(h.Command, arg)
			}
			if v.Kind == yaml.SequenceNode && len(items) == 0 {
				d.problemf(v, "%s.command is empty: give the program and its arguments as a list", path)
			}
			if len(h.Command) > 0 {
				d.executable(items[0], path+".command[0]", h.Command[0])
			}
		},
		"timeout": func(v *yaml.Node) { d.positive(v, path+".timeout", &h.Timeout) },
	})
	if n.Kind == yaml.MappingNode && present["command"] == nil {
		d.problemf(n, "%s.command is required: the program and its arguments, as a list (no shell)", path)
	}
	return h
}

// executable checks that file is an absolute path, and leaves checking that
// it is a program to the director's host (CheckDirectorHost): the same file
// goes on the real servers, which have no hook.
func (d *decoder) executable(n *yaml.Node, path, file string) {
	if !filepath.IsAbs(file) {
		d.problemf(n, "%s must be an absolute path (the hook runs without a shell or PATH lookup), not %q", path, file)
		return
	}
	d.hostFile(n, path, file, true)
}
