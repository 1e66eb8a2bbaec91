package gpu

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NotRunningReason is the reason a nil Manager gives for having no GPUs.
const NotRunningReason = "GPU support is not running in this kfp-box server"

// DefaultSampleInterval is how often utilization and memory are read when Options leaves it 0.
const DefaultSampleInterval = 10 * time.Second

// DefaultCDIDirs are the directories searched for CDI specs, as the CDI specification lists them.
var DefaultCDIDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Options configure a Manager.
type Options struct {
	// Logger receives discovery and health messages; nil discards them.
	Logger *slog.Logger
	// NVML is the library to use; nil means the real libnvidia-ml.so.1 through go-nvml.
	// Tests pass go-nvml's mock (for example pkg/nvml/mock/dgxa100).
	NVML nvml.Interface
	// DevFS is the host's root file system, used to find device nodes, driver libraries,
	// nvidia-smi and CDI specs; nil means os.DirFS("/"). Paths in it have no leading slash.
	DevFS fs.FS
	// CDIDirs are absolute directories searched for CDI specs; nil means DefaultCDIDirs.
	CDIDirs []string
	// SampleInterval is the period of utilization and memory sampling after Start; 0 means
	// DefaultSampleInterval.
	SampleInterval time.Duration
}

// Manager owns the box's GPU inventory: it discovers devices once, samples them periodically,
// grants exclusive leases in arrival order, and builds the injection for a task's runtime.
// All methods are safe for concurrent use.
type Manager struct {
	log      *slog.Logger
	lib      nvml.Interface
	devFS    fs.FS
	cdiDirs  []string
	interval time.Duration

	mu          sync.Mutex
	devs        []*Device                        // by index
	byUUID      map[string]*Device               // the same devices
	holder      map[string]string                // UUID -> owner
	queue       []*waiter                        // arrival order
	seq         uint64                           // arrival counter
	unavailable string                           // why there are no GPUs; "" when NVML works
	nvmlUp      bool                             // Init succeeded and Shutdown not yet called
	onGrant     func(seq uint64, uuids []string) // test hook, called with mu held
	eventWaitMs uint32                           // bound of one NVML event wait

	runMu   sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{} // sampler ended
	xidDone chan struct{} // XID watcher ended
}

// New discovers the GPUs. A box without NVML (no libnvidia-ml, no driver) is not an error: the
// Manager then has no devices, Unavailable says why, and one log line says so too.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &Manager{
		log:         opts.Logger,
		lib:         opts.NVML,
		devFS:       opts.DevFS,
		cdiDirs:     opts.CDIDirs,
		interval:    opts.SampleInterval,
		byUUID:      map[string]*Device{},
		holder:      map[string]string{},
		eventWaitMs: defaultEventWaitMs,
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.lib == nil {
		m.lib = nvml.New()
	}
	if m.devFS == nil {
		m.devFS = os.DirFS("/")
	}
	if m.cdiDirs == nil {
		m.cdiDirs = DefaultCDIDirs
	}
	if m.interval <= 0 {
		m.interval = DefaultSampleInterval
	}
	if ret := m.lib.Init(); ret != nvml.SUCCESS {
		m.unavailable = unavailableReason(ret)
		m.log.Info("no GPUs: "+m.unavailable, "nvml", returnString(ret))
		return m, nil
	}
	m.nvmlUp = true
	devs, errs := discover(m.lib)
	for _, err := range errs {
		m.log.Warn("gpu skipped", "err", err)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Index < devs[j].Index })
	m.devs = devs
	for _, d := range devs {
		m.byUUID[d.UUID] = d
		if !d.Healthy {
			m.log.Warn("gpu unhealthy", "index", d.Index, "uuid", d.UUID, "reason", d.HealthReason)
		}
		if d.MIGEnabled {
			m.log.Info("gpu in MIG mode is not allocated", "index", d.Index, "uuid", d.UUID)
		}
	}
	switch {
	case len(devs) == 0 && len(errs) > 0:
		m.unavailable = fmt.Sprintf("NVML found no usable GPU: %v", errs[0])
	case len(devs) == 0:
		m.unavailable = "NVML reports no GPUs on this machine"
	}
	if m.unavailable != "" {
		m.log.Info("no GPUs: " + m.unavailable)
		return m, nil
	}
	m.log.Info("gpus discovered", "count", len(devs), "name", devs[0].Name,
		"driver", devs[0].DriverVersion, "cuda", devs[0].CUDAVersion)
	return m, nil
}

// Devices returns a copy of the inventory ordered by index, each with its current holder.
// A nil Manager has no devices.
func (m *Manager) Devices() []Device {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Device, len(m.devs))
	for i, d := range m.devs {
		out[i] = *d
		out[i].AssignedTo = m.holder[d.UUID]
	}
	return out
}

// Unavailable says why the box has no GPUs, or "" when it has some.
func (m *Manager) Unavailable() string {
	if m == nil {
		return NotRunningReason
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unavailable
}

// Assignments maps the UUID of every held GPU to its owner.
func (m *Manager) Assignments() map[string]string {
	if m == nil {
		return map[string]string{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.holder))
	for u, o := range m.holder {
		out[u] = o
	}
	return out
}

// Start begins periodic sampling of utilization, memory and health, and watches NVML's
// critical XID events (errors that application faults cause are ignored). It returns at once;
// Stop ends both. Without GPUs it does nothing.
func (m *Manager) Start(ctx context.Context) error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.cancel != nil {
		return nil
	}
	m.mu.Lock()
	up := m.nvmlUp && len(m.devs) > 0
	m.mu.Unlock()
	if !up {
		return nil
	}
	m.Sample(ctx)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done, m.xidDone = cancel, make(chan struct{}), make(chan struct{})
	go m.loop(ctx, m.done)
	go m.watchXID(ctx, m.xidDone)
	return nil
}

func (m *Manager) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sample(ctx)
		}
	}
}

// Stop ends sampling and closes the NVML session. The inventory and leases stay usable with
// their last sampled values. Stop may be called more than once.
func (m *Manager) Stop(ctx context.Context) error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.cancel != nil {
		m.cancel()
		for _, ch := range []chan struct{}{m.done, m.xidDone} {
			select {
			case <-ch:
			case <-ctx.Done():
				return fmt.Errorf("gpu sampler stop: %w", ctx.Err())
			}
		}
		m.cancel, m.done, m.xidDone = nil, nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nvmlUp {
		m.nvmlUp = false
		if ret := m.lib.Shutdown(); ret != nvml.SUCCESS {
			return fmt.Errorf("gpu: %w", &nvmlError{op: "shutdown", ret: ret})
		}
	}
	return nil
}

// Sample reads utilization and memory of every GPU once and updates health. A GPU NVML reports
// lost or failing becomes unhealthy: it keeps its current holder but gets no new lease, and
// waiting requests that can no longer be met fail with ErrUnsatisfiable.
func (m *Manager) Sample(ctx context.Context) {
	m.mu.Lock()
	if !m.nvmlUp {
		m.mu.Unlock()
		return
	}
	uuids := make([]string, len(m.devs))
	for i, d := range m.devs {
		uuids[i] = d.UUID
	}
	m.mu.Unlock()

	samples := make([]sample, len(uuids))
	for i, u := range uuids {
		if ctx.Err() != nil {
			return
		}
		samples[i] = readSample(m.lib, u)
	}
	now := time.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for i, u := range uuids {
		d, s := m.byUUID[u], samples[i]
		d.SampledAt = now
		if s.healthErr != nil {
			if d.Healthy {
				m.log.Warn("gpu unhealthy", "index", d.Index, "uuid", d.UUID, "err", s.healthErr)
				changed = true
			}
			d.Healthy, d.HealthReason = false, s.healthErr.Error()
			continue
		}
		d.Utilization = s.util
		if s.memTotal > 0 {
			d.MemoryUsed, d.MemoryTotal = s.memUsed, s.memTotal
		}
	}
	if changed {
		m.schedule()
	}
}
