package appliance

import (
	"context"
	"net/http"

	"github.com/kfp-box/kfp-box/appliance/api"
)

// The setup steps below grow as backends land; each registers its stop with onStop.

func (a *Appliance) setupObjects(context.Context) error { return nil }

func (a *Appliance) setupRuntime(context.Context) error { return nil }

func (a *Appliance) setupGPU(context.Context) error { return nil }

func (a *Appliance) setupEngine(context.Context) error { return nil }

func (a *Appliance) engineForAPI() api.Engine { return nil }

func (a *Appliance) uiHandler() http.Handler { return nil }
