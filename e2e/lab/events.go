package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Event is one call of a DHCP client's hook script: the reason (BOUND6,
// RENEW6, RELEASE6, ...) and the variables the client passed.
type Event struct {
	Reason string
	Vars   map[string]string
}

// recorderScript is a client hook script that appends each call's
// environment to a file as one block, written whole so a reader never
// sees half an event.
const recorderScript = `#!/bin/sh
out=%q
tmp="$out.$$"
{
	echo "event"
	env | grep -E '^(reason|interface|new_|old_|cur_|ifname)' | sort
	echo "end"
} > "$tmp"
cat "$tmp" >> "$out"
rm -f "$tmp"
exit 0
`

// recorder is the script and the file it writes events to.
type recorder struct {
	script string
	file   string
}

func newRecorder(l *Lab, name string) recorder {
	file := l.Path(name + ".events")
	script := l.WriteFile(name+".hook.sh", []byte(fmt.Sprintf(recorderScript, file)), 0o755)
	return recorder{script: script, file: file}
}

// events reads the recorded events.
func (r recorder) events() []Event {
	b, err := os.ReadFile(r.file)
	if err != nil {
		return nil
	}
	return ParseEvents(string(b))
}

// ParseEvents reads blocks written by the recorder script.
func ParseEvents(s string) []Event {
	var evs []Event
	var cur *Event
	for _, line := range strings.Split(s, "\n") {
		switch {
		case line == "event":
			cur = &Event{Vars: map[string]string{}}
		case line == "end" && cur != nil:
			cur.Reason = cur.Vars["reason"]
			evs = append(evs, *cur)
			cur = nil
		case cur != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				cur.Vars[k] = v
			}
		}
	}
	return evs
}

// wait polls the recorded events until match accepts one at index >= from.
func (r recorder) wait(ctx context.Context, from int, match func(Event) bool) (Event, int, error) {
	for {
		evs := r.events()
		for i := from; i < len(evs); i++ {
			if match(evs[i]) {
				return evs[i], i, nil
			}
		}
		select {
		case <-ctx.Done():
			return Event{}, 0, fmt.Errorf("wait for a client event (seen: %s): %w", reasons(evs), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func reasons(evs []Event) string {
	rs := make([]string, len(evs))
	for i, e := range evs {
		rs[i] = e.Reason
	}
	return strings.Join(rs, ",")
}

// Addr returns the address variable key of the event, if it parses.
func (e Event) Addr(key string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(e.Vars[key])
	return a, err == nil
}
