package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/saasgate/saasgate/control"
)

// `saasgate audit verify` checks a tenant's audit chain from the command line, opening the
// backend as the saas app does (embedded FerretDB under data_dir unless mongo_uri is given).
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "audit",
		Short: "Commands for saasgate's audit log",
		CobraFunc: func(cmd *cobra.Command) {
			verify := &cobra.Command{
				Use:   "verify --tenant <id> [--mongo-uri <uri>] [--database <name>] [--data-dir <path>]",
				Short: "Verifies a tenant's audit hash chain",
				Long: `
Walks the tenant's audit chain from its retention anchor and prints the first
broken or missing link. Exit status: 0 when the chain holds, 1 when it is
broken, 2 when it could not be read.
`,
				RunE: caddycmd.WrapCommandFuncForCobra(cmdAuditVerify),
			}
			auditVerifyFlags(verify.Flags())
			cmd.AddCommand(verify)
		},
	})
}

func auditVerifyFlags(fs *pflag.FlagSet) {
	fs.String("tenant", "", "Tenant id (required; \"system\" for the platform's entries)")
	fs.String("mongo-uri", "", "MongoDB URI (default: the embedded FerretDB under --data-dir)")
	fs.String("database", control.DefaultDatabase, "Database name")
	fs.String("data-dir", control.DefaultDataDir, "Data directory of the embedded FerretDB")
}

// errChainBroken makes the command exit with status 1.
var errChainBroken = errors.New("the audit chain is broken")

func cmdAuditVerify(fl caddycmd.Flags) (int, error) {
	tenantID := fl.String("tenant")
	if tenantID == "" {
		return 2, errors.New("--tenant is required")
	}
	cfg := control.BackendConfig{MongoURI: fl.String("mongo-uri"), Database: fl.String("database"), DataDir: fl.String("data-dir")}
	err := auditVerify(context.Background(), os.Stdout, cfg, tenantID)
	switch {
	case errors.Is(err, errChainBroken):
		return 1, err
	case err != nil:
		return 2, err
	}
	return 0, nil
}

// auditVerify prints the result of verifying tenantID's chain to w; a broken chain is
// errChainBroken.
func auditVerify(ctx context.Context, w io.Writer, cfg control.BackendConfig, tenantID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	b, err := control.OpenBackend(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	v, err := control.VerifyAudit(ctx, b, tenantID)
	if err != nil {
		return err
	}
	if v.OK {
		fmt.Fprintf(w, "ok: tenant %s, %d entries checked after anchor seq %d, head seq %d\n", tenantID, v.Checked, v.AnchorSeq, v.HeadSeq)
		return nil
	}
	fmt.Fprintf(w, "broken: tenant %s, seq %d: %s\n", tenantID, v.Broken.Seq, v.Broken.Reason)
	return errChainBroken
}
