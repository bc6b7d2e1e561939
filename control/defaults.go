package control

import (
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/token"
)

// The defaults of the saas options, each set here and nowhere else: the Caddy adapter fills
// an option left empty from them, and New and OpenRuntime fall back to them when built
// without the adapter (tests, tools).
const (
	DefaultDatabase       = "saasgate"
	DefaultDataDir        = "data"
	DefaultIssuer         = token.DefaultIssuer
	DefaultAccessTTL      = token.DefaultTTL
	DefaultBaseDomain     = "localhost"
	DefaultPlan           = "free"
	DefaultGracePeriod    = 168 * time.Hour
	DefaultOnLimiterError = "local"
	DefaultKeyPrefix      = "saasgate:"
	DefaultRedisTimeout   = 50 * time.Millisecond
	DefaultMongoTimeout   = 10 * time.Second // mongo_connect_timeout, mongo_server_selection_timeout
	DefaultMongoPoolSize  = 100              // the driver's
	DefaultReadPreference = "primary"
	DefaultTenantLayout   = string(store.LayoutCollections)
)

// The defaults of usage_alerts and of the webhooks block.
var (
	DefaultUsageAlerts          = limit.DefaultThresholds
	DefaultWebhookRetrySchedule = notify.DefaultRetrySchedule
)

const DefaultWebhookTimeout = notify.DefaultTimeout
