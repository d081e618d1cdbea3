package pool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// settings are the limits a client runs with after NewClient reconciled
// go-redis's options with the cap.
type settings struct {
	// maxConnections is the cap on every socket; 0 means none: the client
	// then counts its sockets and refuses nothing.
	maxConnections int
	// capFrom names where the cap came from, for logs and errors:
	// "WithMaxConnections" or "MaxActiveConns".
	capFrom string
	// poolSize is the main pool's size, as go-redis runs it (0 without a cap:
	// go-redis's default, read back from the client).
	poolSize int
	// pubsubShare is, under a cap, how many Pub/Sub sockets may open without
	// taking a turn of the pool: the cap less what the pools may hold.
	pubsubShare int
	// poolTimeout is the longest a caller waits for a socket in all: the
	// PoolTimeout go-redis runs with (the caller's, or go-redis's default),
	// read back from go-redis.
	poolTimeout time.Duration
}

// note is one line NewClient logs about an option it changed.
type note struct {
	level slog.Level
	msg   string
	attrs []any
}

// settle validates opt and cfg and returns the copy of opt the client runs
// with, its settings, and the notes to log. It does not modify opt.
//
// Without a cap the copy is opt as it is: the client tracks, it does not
// limit. Under a cap (WithMaxConnections, or else a MaxActiveConns the caller
// set) the pools are fitted into it:
//   - go-redis's own MaxActiveConns is cleared: it fails fast instead of
//     waiting, and does not count Pub/Sub sockets; the cap replaces it.
//   - the main pool keeps PoolSize sockets at most (a PoolSize above the cap
//     is lowered, with a WARN for one the caller set); the dedicated pipeline
//     pool is off unless PipelinePoolSize was set, and then counts with it.
//   - Pub/Subs open their sockets in what the pools leave of the cap, and
//     beyond that by taking a turn of the pool (see Client.Subscribe).
//   - go-redis waits PoolTimeout for a turn on each of its MaxRetries+1
//     attempts; the copy's PoolTimeout is split across them so that a caller
//     refused by the cap waits about PoolTimeout in all.
func settle(opt *redis.Options, cfg *config) (redis.Options, settings, []note, error) {
	if opt == nil {
		return redis.Options{}, settings{}, nil, fmt.Errorf("pool: NewClient: nil *redis.Options")
	}
	if len(cfg.errs) > 0 {
		return redis.Options{}, settings{}, nil, cfg.errs[0]
	}
	for _, f := range []struct {
		name  string
		value int
	}{
		{"PoolSize", opt.PoolSize},
		{"MaxActiveConns", opt.MaxActiveConns},
		{"MinIdleConns", opt.MinIdleConns},
		{"MaxIdleConns", opt.MaxIdleConns},
	} {
		if f.value < 0 {
			return redis.Options{}, settings{}, nil, fmt.Errorf("pool: %s: %s.%s is %d; it must be 0 (the default) or positive", cfg.constructor(), cfg.optionsType(), f.name, f.value)
		}
	}
	if opt.PoolTimeout < 0 {
		return redis.Options{}, settings{}, nil, fmt.Errorf("pool: %s: %s.PoolTimeout is %s; it must be 0 (the default) or positive", cfg.constructor(), cfg.optionsType(), opt.PoolTimeout)
	}

	o := *opt
	set := settings{maxConnections: cfg.maxConnections, capFrom: cmp.Or(cfg.capName, "WithMaxConnections")}
	var notes []note
	switch {
	case set.maxConnections == 0 && o.MaxActiveConns > 0:
		set.maxConnections, set.capFrom = o.MaxActiveConns, "MaxActiveConns"
		notes = append(notes, note{slog.LevelInfo, "redisleak: MaxActiveConns is the cap on every socket",
			[]any{"max_connections", o.MaxActiveConns, "detail", "the client waits for a socket under it, Pub/Sub included, instead of failing fast"}})
		o.MaxActiveConns = 0
	case set.maxConnections > 0 && o.MaxActiveConns > 0:
		notes = append(notes, note{slog.LevelWarn, "redisleak: adjusted a go-redis option to the connection cap",
			[]any{"detail", fmt.Sprintf("MaxActiveConns %d replaced by MaxConnections %d", o.MaxActiveConns, set.maxConnections)}})
		o.MaxActiveConns = 0
	}
	if set.maxConnections == 0 {
		return o, set, notes, nil
	}
	// The pools are fitted to the cap with the sizes and waits go-redis
	// would run them with, read back from it rather than copied.
	def := goRedisDefaults(opt)
	set.poolTimeout = def.PoolTimeout

	pipelines := max(o.PipelinePoolSize, 0)
	if pipelines >= set.maxConnections {
		return redis.Options{}, settings{}, nil, fmt.Errorf("pool: %s: %s.PipelinePoolSize is %d; under %s %d it must be smaller than the cap, or 0 to share the main pool", cfg.constructor(), cfg.optionsType(), o.PipelinePoolSize, set.capFrom, set.maxConnections)
	}
	if pipelines == 0 {
		// A pipeline pool of go-redis's default size would take ten slots of
		// the cap: pipelines share the main pool's turns instead.
		o.PipelinePoolSize = -1
	}
	poolSize := def.PoolSize
	room, kept := set.maxConnections-pipelines, ""
	if cfg.pubsubSlot && room > 1 {
		room, kept = room-1, " and one slot kept for Pub/Subs"
	}
	if poolSize > room {
		// A default PoolSize simply follows the cap; only a size the caller
		// chose is worth a warning.
		if o.PoolSize != 0 && !cfg.poolSizeUnset {
			notes = append(notes, note{slog.LevelWarn, "redisleak: adjusted a go-redis option to the connection cap",
				[]any{"detail", fmt.Sprintf("PoolSize %d is larger than %s %d less PipelinePoolSize %d%s; lowered to %d", o.PoolSize, set.capFrom, set.maxConnections, pipelines, kept, room)}})
		}
		poolSize = room
	}
	o.PoolSize = poolSize
	if o.MinIdleConns > poolSize {
		notes = append(notes, note{slog.LevelWarn, "redisleak: adjusted a go-redis option to the connection cap",
			[]any{"detail", fmt.Sprintf("MinIdleConns %d is larger than the pool size %d; lowered to %d", o.MinIdleConns, poolSize, poolSize)}})
		o.MinIdleConns = poolSize
	}
	set.poolSize = poolSize
	set.pubsubShare = set.maxConnections - poolSize - pipelines
	// Split across the attempts go-redis makes for one command.
	o.PoolTimeout = max(set.poolTimeout/time.Duration(def.MaxRetries+1), time.Millisecond)
	return o, set, notes, nil
}

// errNoDial fails the dials of the client goRedisDefaults builds, which
// makes none.
var errNoDial = errors.New("redisleak: a client built to read go-redis's defaults does not dial")

// goRedisDefaults returns opt as go-redis completes it: its PoolSize,
// PoolTimeout, MaxRetries (retries, -1 made 0), DialTimeout and the rest
// with go-redis's defaults filled in. It builds a go-redis client that never dials, reads its
// options back and closes it, so that the cap's arithmetic follows whatever
// defaults the go-redis version in use has.
func goRedisDefaults(opt *redis.Options) redis.Options {
	probe := *opt
	probe.MinIdleConns, probe.OnConnect = 0, nil
	probe.Dialer = func(context.Context, string, string) (net.Conn, error) { return nil, errNoDial }
	c := redis.NewClient(&probe)
	def := *c.Options()
	_ = c.Close()
	def.MinIdleConns, def.OnConnect, def.Dialer = opt.MinIdleConns, opt.OnConnect, opt.Dialer
	return def
}
