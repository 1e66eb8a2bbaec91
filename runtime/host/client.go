package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file is the Runtime's side of the shim: finding, spawning and talking to it.

// shimReadyTimeout bounds a shim's start-up, so that a binary that is not a shim (its
// main does not call ShimMain) fails Open instead of hanging it.
const shimReadyTimeout = 10 * time.Second

// binaryIdent identifies a binary by path, size and modification time: a rebuilt or
// upgraded kfp-box does not use a shim left running by the previous binary.
func binaryIdent(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano()), nil
}

func (r *Runtime) sockPath(pid int) string {
	return filepath.Join(r.shimDir, strconv.Itoa(pid)+".sock")
}

// currentShim reads the pid of the shim that serves new tasks.
func (r *Runtime) currentShim() (int, bool) {
	data, err := os.ReadFile(filepath.Join(r.shimDir, shimCurrentFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid, err == nil && pid > 0
}

// connect attaches to the current shim, spawning one if none answers, and returns its
// socket. When stale is the socket already attached to, it is replaced (that shim died
// or retired); otherwise an existing attachment is returned as is.
func (r *Runtime) connect(stale string) (string, error) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	r.mu.Lock()
	if r.attach != nil && r.shimSock != stale {
		sock := r.shimSock
		r.mu.Unlock()
		return sock, nil
	}
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return "", errors.New("host runtime closed")
	}
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if pid, ok := r.currentShim(); ok {
			sock := r.sockPath(pid)
			c, ok, err := r.attachTo(sock)
			if err == nil && ok {
				r.mu.Lock()
				old := r.attach
				r.attach, r.shimSock = c, sock
				r.mu.Unlock()
				if old != nil {
					old.Close()
				}
				return sock, nil
			}
			if err != nil {
				lastErr = err
			}
		}
		if err := r.spawnShim(); err != nil {
			lastErr = err
			if !errors.Is(err, errShimBusy) {
				return "", err
			}
		}
	}
	return "", fmt.Errorf("no shim answers in %s: %w", r.shimDir, lastErr)
}

// attachTo attaches to the shim at sock. A shim running another binary is retired: it
// runs its tasks to their end but takes no more (ok false).
func (r *Runtime) attachTo(sock string) (c *net.UnixConn, ok bool, err error) {
	c, err = dialUnix(sock)
	if err != nil {
		return nil, false, err
	}
	_ = c.SetDeadline(time.Now().Add(shimReadyTimeout))
	br := bufio.NewReader(c)
	line, err := "", error(nil)
	if _, err = io.WriteString(c, "attach\n"); err == nil {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		c.Close()
		return nil, false, fmt.Errorf("attach to shim %s: %w", sock, err) // it was exiting
	}
	ident, _ := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "attached ")
	if ident != r.ident {
		r.log.Info("host runtime: retiring the shim of another binary; its tasks run to their end",
			"shim", sock, "its_binary", ident)
		if _, err := io.WriteString(c, "retire\n"); err == nil {
			_, _ = br.ReadString('\n')
		}
		c.Close()
		return nil, false, nil
	}
	_ = c.SetDeadline(time.Time{})
	return c, true, nil
}

// spawnShim starts a shim and waits until it listens. It is detached (its own session,
// stdio on /dev/null) so that it outlives this process. errShimBusy means another shim
// took the directory meanwhile.
func (r *Runtime) spawnShim() error {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	env := []string{ShimEnv + "=1", shimDirEnv + "=" + r.shimDir, shimIdentEnv + "=" + r.ident}
	if r.ns {
		env = append(env, shimNSEnv+"=1")
	}
	cmd := &exec.Cmd{
		Path:        r.shim,
		Args:        []string{"kfp-box-shim"},
		Env:         env,
		ExtraFiles:  []*os.File{readyW}, // readyFD
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start shim %s: %w", r.shim, err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it exits while this process lives
	_ = readyR.SetReadDeadline(time.Now().Add(shimReadyTimeout))
	line, err := bufio.NewReader(readyR).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	switch {
	case strings.HasPrefix(line, "ready "):
		r.log.Debug("host runtime: shim started", "pid", strings.TrimPrefix(line, "ready "))
		return nil
	case line == "busy":
		return errShimBusy
	case strings.HasPrefix(line, "error: "):
		return fmt.Errorf("shim %s: %s", r.shim, strings.TrimPrefix(line, "error: "))
	default:
		_ = cmd.Process.Kill()
		return fmt.Errorf("shim %s did not answer (%q, %v)", r.shim, line, err)
	}
}

// request sends one request to the current shim, attaching again (and spawning a shim)
// if the one attached to is gone, and returns the connection to read the answer from.
func (r *Runtime) request(ctx context.Context, req string) (*net.UnixConn, *bufio.Reader, string, error) {
	sock, err := r.connect("")
	for attempt := 0; err == nil; attempt++ {
		var c *net.UnixConn
		c, err = requestTo(sock, req)
		if err == nil {
			return c, bufio.NewReader(c), sock, nil
		}
		if attempt > 0 || ctx.Err() != nil {
			break
		}
		sock, err = r.connect(sock)
	}
	return nil, nil, "", fmt.Errorf("shim: %w", err)
}

// findShim asks every live shim of the data dir about the task in dir and returns the
// socket of the one that runs it with its answer ("running" or "exited"), or "unknown"
// when none does. Shims that do not answer count as not running it.
func (r *Runtime) findShim(dir string) (sock, status string) {
	socks, _ := filepath.Glob(filepath.Join(r.shimDir, "*.sock"))
	for _, s := range socks {
		c, err := requestTo(s, "status "+dir)
		if err != nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(shimReadyTimeout))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if line == "running\n" || line == "exited\n" {
			return s, strings.TrimSuffix(line, "\n")
		}
	}
	return "", "unknown"
}

// shimGone reports whether the shim listening on sock has exited or is exiting.
func shimGone(sock string) bool {
	pid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(sock), ".sock"))
	if err != nil {
		return false
	}
	return processGone(pid)
}

// requestTo sends one request to the shim at sock.
func requestTo(sock, req string) (*net.UnixConn, error) {
	c, err := dialUnix(sock)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, req+"\n"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
