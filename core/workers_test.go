package core

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// waitIdle waits until n of p's workers are idle.
func waitIdle(p *workerPool, n int) {
	for {
		p.mu.Lock()
		k := len(p.idle)
		p.mu.Unlock()
		if k == n {
			return
		}
		runtime.Gosched()
	}
}

// TestWorkerPoolStartsOnlyTheWorkersNeeded: jobs one after another run on
// one goroutine; two at a time on two. (Each round waits until the
// workers are back on the idle stack: a job submitted while its worker is
// still finishing the last one rightly starts another.)
func TestWorkerPoolStartsOnlyTheWorkersNeeded(t *testing.T) {
	done := make(chan struct{})
	p := newWorkerPool(8, 4, func(*job) { done <- struct{}{} })
	for range 50 {
		if !p.submit(&job{}) {
			t.Fatal("refused with idle workers")
		}
		<-done
		waitIdle(p, 1)
	}
	if p.started != 1 {
		t.Errorf("sequential jobs started %d workers, want 1", p.started)
	}
	for range 20 {
		p.submit(&job{})
		p.submit(&job{})
		<-done
		<-done
		waitIdle(p, p.started)
	}
	if p.started > 2 {
		t.Errorf("pairs of jobs started %d workers, want at most 2", p.started)
	}
	p.close()
}

// TestWorkerPoolLastIdleFirst: the worker that went idle last takes the
// next job.
func TestWorkerPoolLastIdleFirst(t *testing.T) {
	release := make(chan struct{})
	p := newWorkerPool(3, 1, func(*job) { <-release })
	for range 3 {
		p.submit(&job{})
	}
	// Let them finish one by one: the idle stack ends with the last.
	for i := 1; i <= 3; i++ {
		release <- struct{}{}
		waitIdle(p, i)
	}
	p.mu.Lock()
	last := p.idle[2]
	p.mu.Unlock()
	p.submit(&job{})
	p.mu.Lock()
	if len(p.idle) != 2 || p.idle[0] == last || p.idle[1] == last {
		t.Errorf("the next job did not go to the last idle worker")
	}
	p.mu.Unlock()
	release <- struct{}{}
	p.close()
}

// TestWorkerPoolBoundsItsQueue: with every worker busy, jobs queue up to
// the bound and are refused beyond it; close runs the queued ones.
func TestWorkerPoolBoundsItsQueue(t *testing.T) {
	var ran atomic.Int32
	release := make(chan struct{})
	p := newWorkerPool(2, 3, func(*job) { <-release; ran.Add(1) })
	accepted := 0
	for range 10 {
		if p.submit(&job{}) {
			accepted++
		}
	}
	if accepted != 5 {
		t.Errorf("accepted %d jobs, want 2 running + 3 queued", accepted)
	}
	go func() {
		for range accepted {
			release <- struct{}{}
		}
	}()
	p.close()
	if got := ran.Load(); got != int32(accepted) {
		t.Errorf("close returned after %d of %d jobs", got, accepted)
	}
}
