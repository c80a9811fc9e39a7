package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// streamedLines is how many lines of one process go to the test log as
// they come; the rest is kept and its tail shown if the test fails.
const (
	streamedLines = 400
	keptBytes     = 8 << 20
	tailLines     = 200
)

// Process is a long-running program of a lab (a daemon, a client) whose
// output goes to the test log, prefixed with its name.
type Process struct {
	Name string
	lab  *Lab
	cmd  *exec.Cmd
	out  *logSink
	done chan struct{}
	err  error
}

// Start starts name with args inside the namespace. The process is stopped
// (SIGTERM, then SIGKILL after 5s) in the test's cleanup.
func (n *Netns) Start(label, name string, args ...string) *Process {
	n.lab.t.Helper()
	p, err := n.StartCmd(label, n.Command(context.Background(), name, args...))
	if err != nil {
		n.lab.t.Fatalf("lab: %v", err)
	}
	return p
}

// StartCmd starts a prepared command (from Command) as a lab process.
func (n *Netns) StartCmd(label string, cmd *exec.Cmd) (*Process, error) {
	l := n.lab
	sink := &logSink{t: l, label: label}
	cmd.Stdout = sink
	cmd.Stderr = sink
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p := &Process{Name: label, lab: l, cmd: cmd, out: sink, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		sink.finish()
		close(p.done)
	}()
	l.t.Cleanup(func() {
		_ = p.Stop()
		sink.dumpTail(l.t.Failed())
	})
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error once it has ended.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Wait waits for the process to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("wait for %s to exit: %w", p.Name, ctx.Err())
	}
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to 5s, then kills the process group.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	return p.Kill()
}

// Kill kills the process group with SIGKILL and waits for the end.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not die after SIGKILL", p.Name)
	}
}

// Output returns what the process has printed so far (the first 8 MiB).
func (p *Process) Output() string { return p.out.String() }

// WaitOutput waits until the output matches re.
func (p *Process) WaitOutput(ctx context.Context, re *regexp.Regexp) error {
	for {
		if re.MatchString(p.Output()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %q in the output of %s: %w", re, p.Name, ctx.Err())
		case <-p.done:
			if re.MatchString(p.Output()) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before printing %q", p.Name, p.err, re)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logSink splits a process's output into lines for the test log and keeps
// a copy for the test to read.
type logSink struct {
	t        *Lab
	label    string
	mu       sync.Mutex
	buf      bytes.Buffer
	partial  []byte
	streamed int
	held     int
	done     bool
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if room := keptBytes - s.buf.Len(); room > 0 {
		s.buf.Write(b[:min(len(b), room)])
	}
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	return len(b), nil
}

func (s *logSink) line(l string) {
	if s.done {
		return
	}
	if s.streamed < streamedLines {
		s.streamed++
		s.t.t.Logf("[%s] %s", s.label, l)
		return
	}
	s.held++
}

// finish flushes a last unterminated line; later writes are kept only.
func (s *logSink) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
	s.done = true
}

// dumpTail shows the lines that were not streamed, when the test failed.
func (s *logSink) dumpTail(failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	if !failed || s.held == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(s.buf.String(), "\n"), "\n")
	from := max(len(lines)-min(s.held, tailLines), 0)
	s.t.t.Logf("[%s] ... %d lines not shown; the last %d:", s.label, s.held, len(lines)-from)
	for _, l := range lines[from:] {
		s.t.t.Logf("[%s] %s", s.label, l)
	}
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
