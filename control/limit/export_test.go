package limit

// WaitRenewals waits for the background renewals in flight.
func (l *Leased) WaitRenewals() { l.renewals.Wait() }

// TakeAllRenewalSlots leaves no room for a background renewal.
func (l *Leased) TakeAllRenewalSlots() {
	for len(l.slots) < cap(l.slots) {
		l.slots <- struct{}{}
	}
}
