package gpu

import (
	"context"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// defaultEventWaitMs bounds one NVML event wait, and so how long Stop may wait for the watcher.
const defaultEventWaitMs = 1000

// applicationXIDs are XID errors caused by a task's own code (an illegal address, a page
// fault, a preempted context...). They leave the GPU healthy.
var applicationXIDs = map[uint64]bool{13: true, 31: true, 43: true, 45: true, 68: true, 109: true}

// watchXID marks GPUs unhealthy when NVML reports a critical XID error for them. It returns
// when ctx ends, or at once when the driver cannot deliver events.
func (m *Manager) watchXID(ctx context.Context, done chan struct{}) {
	defer close(done)
	set, ret := m.lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		m.log.Info("gpu health events unavailable; health comes from sampling only", "nvml", returnString(ret))
		return
	}
	defer set.Free()
	m.mu.Lock()
	uuids := make([]string, len(m.devs))
	for i, d := range m.devs {
		uuids[i] = d.UUID
	}
	m.mu.Unlock()
	registered := 0
	for _, u := range uuids {
		h, ret := m.lib.DeviceGetHandleByUUID(u)
		if ret == nvml.SUCCESS {
			ret = h.RegisterEvents(uint64(nvml.EventTypeXidCriticalError), set)
		}
		if ret != nvml.SUCCESS {
			m.log.Info("gpu health events unavailable for device", "uuid", u, "nvml", returnString(ret))
			continue
		}
		registered++
	}
	if registered == 0 {
		return
	}
	for ctx.Err() == nil {
		e, ret := set.Wait(m.eventWaitMs)
		switch {
		case ret == nvml.ERROR_TIMEOUT:
			continue
		case ret != nvml.SUCCESS:
			m.log.Warn("gpu health events stopped", "nvml", returnString(ret))
			return
		case e.EventType != uint64(nvml.EventTypeXidCriticalError) || applicationXIDs[e.EventData]:
			continue
		}
		uuid := ""
		if e.Device != nil {
			uuid, _ = e.Device.GetUUID()
		}
		m.markXID(uuid, e.EventData)
	}
}

// markXID records a critical XID for the GPU with uuid, or for every GPU when NVML could not
// say which one (it reports such errors without a device).
func (m *Manager) markXID(uuid string, xid uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reason := fmt.Sprintf("critical XID error %d", xid)
	changed := false
	for _, d := range m.devs {
		if uuid != "" && d.UUID != uuid {
			continue
		}
		if d.Healthy {
			m.log.Warn("gpu unhealthy", "index", d.Index, "uuid", d.UUID, "reason", reason)
			changed = true
		}
		d.Healthy, d.HealthReason = false, reason
	}
	if changed {
		m.schedule()
	}
}
