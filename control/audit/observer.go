package audit

// Observer hears what the metrics count; labels are bounded (outcomes only, never a tenant).
// May be nil.
type Observer interface {
	// Appended is called once per entry written to a chain.
	Appended()
	// VerifyFailed is called once per verification that found a broken or missing link.
	VerifyFailed()
}
