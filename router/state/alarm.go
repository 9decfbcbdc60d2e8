package state

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/classroute/classroute/router"
)

// etcd raises an alarm when it must refuse writes: NOSPACE when its
// database reaches its quota (--quota-backend-bytes, 2 GiB by default),
// CORRUPT when members disagree. The store asks etcd for its alarms
// every alarmPolls progress intervals (5s by default; AlarmList is a
// cluster-wide answer, and costs etcd a raft round); while any
// is raised Ready reports it, so decisions and reads are refused with
// the reason and the health service says NOT_SERVING, and Stats names it
// (classroute_etcd_alarm). Once an operator has freed space and disarmed
// the alarm (etcdctl compact, defrag, alarm disarm) the next poll finds
// none and the store serves again.

// alarmPolls is how many progress intervals apart the alarms are polled.
const alarmPolls = 5

// watchAlarms polls etcd's alarms until ctx ends.
func (s *Store) watchAlarms(ctx context.Context) {
	t := time.NewTicker(alarmPolls * s.progressEvery)
	defer t.Stop()
	for {
		s.pollAlarms(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollAlarms asks etcd for its alarms once; when etcd does not answer,
// what was last known stands (Ready's other checks cover an etcd that
// is gone).
func (s *Store) pollAlarms(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.cli.AlarmList(actx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Debug("state: etcd alarm list", "err", err)
		}
		return
	}
	var types []string
	for _, a := range resp.Alarms {
		if a.Alarm != etcdserverpb.AlarmType_NONE {
			types = append(types, strings.ToLower(a.Alarm.String()))
		}
	}
	slices.Sort(types)
	types = slices.Compact(types)
	old := s.alarms.Swap(&types)
	switch was := old != nil && len(*old) > 0; {
	case len(types) > 0 && (!was || !slices.Equal(*old, types)):
		s.log.Error("state: etcd raised an alarm; refusing to serve until it clears", "alarms", types, "err", alarmErr(types))
	case len(types) == 0 && was:
		s.log.Warn("state: etcd alarms cleared; serving again", "were", *old)
	}
}

// EtcdAlarms are the alarms etcd last reported, lower case ("nospace",
// "corrupt"); none while it reports none.
func (s *Store) EtcdAlarms() []string {
	if a := s.alarms.Load(); a != nil {
		return slices.Clone(*a)
	}
	return nil
}

// alarmErr says what etcd's alarms mean for the daemon, and what an
// operator does about them.
func alarmErr(types []string) error {
	if slices.Contains(types, "nospace") {
		return fmt.Errorf("%w: etcd raised its NOSPACE alarm: its database reached its space quota and every write is refused; "+
			"an operator must free space (compact, defragment) and disarm the alarm (etcdctl alarm disarm)", router.ErrUnavailable)
	}
	return fmt.Errorf("%w: etcd raised its %s alarm and refuses writes until an operator clears it (etcdctl alarm list)",
		router.ErrUnavailable, strings.ToUpper(strings.Join(types, ", ")))
}
