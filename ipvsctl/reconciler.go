package ipvsctl

// Reconciler keeps the kernel at a desired table. It remembers the table it
// last left the kernel in, so that a change (a check result, a reload) costs
// a diff against memory and the operations it needs, not a dump of the whole
// kernel; Sync reads the kernel again to repair drift made by anyone else.
type Reconciler struct {
	kernel Kernel
	// known is what the kernel held for our services after the last
	// successful apply; nil when unknown (never read, or an apply failed).
	known Table
}

// NewReconciler returns a reconciler that has not read the kernel yet.
func NewReconciler(k Kernel) *Reconciler { return &Reconciler{kernel: k} }

// Sync reads the kernel, then applies what differs from desired and deletes
// the retired services.
func (r *Reconciler) Sync(desired Table, retired []ServiceKey) ([]Op, error) {
	r.known = nil
	return r.Update(desired, retired)
}

// Update applies what differs between desired and the table the kernel was
// last left in, reading the kernel only when that table is unknown.
func (r *Reconciler) Update(desired Table, retired []ServiceKey) ([]Op, error) {
	actual := r.known
	if actual == nil {
		var err error
		if actual, err = Read(r.kernel, append(desired.Keys(), retired...)); err != nil {
			return nil, err
		}
	}
	ops := Diff(desired, actual, retired)
	if err := Apply(r.kernel, ops); err != nil {
		r.known = nil
		return ops, err
	}
	r.known = desired
	return ops, nil
}

// Assume takes t, just read from the kernel by the caller, as what the
// kernel holds for our services, so that the next Update diffs against it
// instead of reading the kernel again.
func (r *Reconciler) Assume(t Table) { r.known = t }

// Known returns the table the kernel was last left in, or nil.
func (r *Reconciler) Known() Table { return r.known }
