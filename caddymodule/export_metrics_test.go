package caddymodule

import (
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/notify"
)

// The metrics observers the saas app hands to the control plane, for the gateway tests to call
// directly (the webhook and audit code paths that call them are tested in their packages).
var (
	NotifyMetrics notify.Observer = notifyMetrics{}
	AuditMetrics  audit.Observer  = auditMetrics{}
)
