package api

import (
	_ "embed"
	"net/http"
	"strings"
)

// Swagger UI is vendored (see swaggerui/VERSION) and inlined into one page, so /docs works
// with no network at view time and needs no asset routes beside it.
var (
	//go:embed swaggerui/swagger-ui-bundle.js
	swaggerJS string
	//go:embed swaggerui/swagger-ui.css
	swaggerCSS string
)

// docsPage is built once: the bundle is 1.5 MB and never changes while the process runs.
var docsPage = strings.NewReplacer("{{CSS}}", swaggerCSS, "{{JS}}", swaggerJS).Replace(docsTemplate)

// The document is fetched relative to the page, so /docs shows what /openapi.json serves on
// the same site, whatever host or prefix a proxy puts in front.
const docsTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>saasgate API</title>
<style>{{CSS}}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script>{{JS}}</script>
<script>
window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
</script>
</body>
</html>
`

func (a *API) docs(w http.ResponseWriter, r *http.Request, _ *call) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := w.Write([]byte(docsPage))
	return err
}
