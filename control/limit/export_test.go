package limit

// WaitRenewals waits for the background renewals in flight.
func (l *Leased) WaitRenewals() { l.renewals.Wait() }
