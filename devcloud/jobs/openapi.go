package jobs

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of Handler; TestOpenAPIMatchesHandlers holds the two together.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Service) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
