package core

import "sync"

// workerPool runs jobs on at most max goroutines, started as they are
// needed, with a bounded queue for jobs that find every worker busy.
//
// The worker that went idle last takes the next job. A shared channel
// would hand jobs to its waiting receivers in turn, first come first
// served, so a load needing ten workers at a time would still pass
// through all of them: each one's stack cold in the caches and shrunk by
// the garbage collector while it waited, to be grown (copied) again on
// its next job. With the last-idle worker first, the same few run.
type workerPool struct {
	run func(*job)

	mu      sync.Mutex
	idle    []*worker // last idle on top
	queue   []*job    // a ring of the jobs waiting for a worker
	head, n int
	started int
	max     int
	closed  bool
	wg      sync.WaitGroup
}

// worker is one goroutine of the pool; next hands it a job when idle.
type worker struct{ next chan *job }

func newWorkerPool(maxWorkers, queue int, run func(*job)) *workerPool {
	return &workerPool{run: run, max: maxWorkers, queue: make([]*job, queue)}
}

// submit gives j to an idle worker, a new one, or the queue; it reports
// false when all max workers are busy and the queue is full.
func (p *workerPool) submit(j *job) bool {
	p.mu.Lock()
	if k := len(p.idle); k > 0 {
		w := p.idle[k-1]
		p.idle[k-1] = nil
		p.idle = p.idle[:k-1]
		p.mu.Unlock()
		w.next <- j // an idle worker's channel is empty
		return true
	}
	if p.started < p.max {
		p.started++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.loop(&worker{next: make(chan *job, 1)}, j)
		return true
	}
	if p.n == len(p.queue) {
		p.mu.Unlock()
		return false
	}
	p.queue[(p.head+p.n)%len(p.queue)] = j
	p.n++
	p.mu.Unlock()
	return true
}

// loop runs j, then whatever next gives, until the pool is closed.
func (p *workerPool) loop(w *worker, j *job) {
	defer p.wg.Done()
	for j != nil {
		p.run(j)
		j = p.next(w)
	}
}

// next takes the oldest queued job; when there is none it puts w on the
// idle stack and waits for one. It returns nil once the pool is closed.
func (p *workerPool) next(w *worker) *job {
	p.mu.Lock()
	if p.n > 0 {
		j := p.queue[p.head]
		p.queue[p.head] = nil
		p.head = (p.head + 1) % len(p.queue)
		p.n--
		p.mu.Unlock()
		return j
	}
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	return <-w.next // nil when close closes it
}

// close lets the workers finish the jobs queued, stops them, and waits.
// No job may be submitted after close.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	for _, w := range p.idle {
		close(w.next)
	}
	p.idle = nil
	p.mu.Unlock()
	p.wg.Wait()
}
