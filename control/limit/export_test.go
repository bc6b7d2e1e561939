package limit

import "time"

// WaitRenewals waits for the background renewals queued or in flight.
func (l *Leased) WaitRenewals() { l.renewals.Wait() }

// NoRenewalRoom leaves no room in the queue for a background renewal.
func (l *Leased) NoRenewalRoom() { l.maxQueued = 0 }

// HoldRenewals keeps renewals queued, unsent, until the returned func is called.
func (l *Leased) HoldRenewals() (release func()) {
	l.qmu.Lock()
	held := !l.draining
	l.draining = true // no goroutine starts: renew sees one running
	l.qmu.Unlock()
	return func() {
		if held {
			l.drain()
		}
	}
}

// LingerForever keeps queued renewals waiting until a request needs one.
func (l *Leased) LingerForever() { l.linger = time.Hour }
