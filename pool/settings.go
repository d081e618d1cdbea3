package pool

import (
	"fmt"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"
)

// settings are the limits a client runs with after NewClient reconciled
// go-redis's options with the cap.
type settings struct {
	maxConnections int
	poolSize       int
	maxActiveConns int
	poolTimeout    time.Duration // how long a caller waits for a pool turn or a socket
}

// settle validates opt and cfg and returns the copy of opt the client runs
// with, its settings, and one warning per option it had to lower. It does not
// modify opt.
func settle(opt *redis.Options, cfg *config) (redis.Options, settings, []string, error) {
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
			return redis.Options{}, settings{}, nil, fmt.Errorf("pool: NewClient: redis.Options.%s is %d; it must be 0 (the default) or positive", f.name, f.value)
		}
	}

	if opt.PoolTimeout < 0 {
		return redis.Options{}, settings{}, nil, fmt.Errorf("pool: NewClient: redis.Options.PoolTimeout is %s; it must be 0 (the default) or positive", opt.PoolTimeout)
	}

	o := *opt
	o.PoolTimeout = effectivePoolTimeout(opt)
	var warnings []string
	poolSize := o.PoolSize
	if poolSize == 0 {
		poolSize = 10 * runtime.GOMAXPROCS(0) // go-redis's default
	}
	maxConns := cfg.maxConnections
	if maxConns == 0 {
		maxConns = poolSize
	}
	if poolSize > maxConns {
		// A default PoolSize simply follows the cap; only a size the caller
		// chose is worth a warning.
		if o.PoolSize != 0 {
			warnings = append(warnings, fmt.Sprintf("PoolSize %d is larger than MaxConnections %d; lowered to %d", poolSize, maxConns, maxConns))
		}
		poolSize = maxConns
	}
	o.PoolSize = poolSize
	if o.MaxActiveConns > maxConns {
		warnings = append(warnings, fmt.Sprintf("MaxActiveConns %d is larger than MaxConnections %d; lowered to %d", o.MaxActiveConns, maxConns, maxConns))
		o.MaxActiveConns = maxConns
	}
	if o.MinIdleConns > poolSize {
		warnings = append(warnings, fmt.Sprintf("MinIdleConns %d is larger than the pool size %d; lowered to %d", o.MinIdleConns, poolSize, poolSize))
		o.MinIdleConns = poolSize
	}
	if o.PipelinePoolSize > 0 {
		warnings = append(warnings, fmt.Sprintf("PipelinePoolSize %d ignored: under MaxConnections pipelines share the main pool", o.PipelinePoolSize))
	}
	// A separate pipeline pool would open sockets the main pool's turns do not
	// count; pipelines take main-pool turns instead.
	o.PipelinePoolSize = -1
	return o, settings{maxConnections: maxConns, poolSize: poolSize, maxActiveConns: o.MaxActiveConns, poolTimeout: o.PoolTimeout}, warnings, nil
}

// effectivePoolTimeout is go-redis's PoolTimeout default, computed here so that
// the cap's waits and the pool's agree from the first dial: ReadTimeout plus a
// second, or 30s when reads never time out.
func effectivePoolTimeout(opt *redis.Options) time.Duration {
	if opt.PoolTimeout > 0 {
		return opt.PoolTimeout
	}
	read := opt.ReadTimeout
	switch read {
	case -2, -1:
		read = 0
	case 0:
		read = 5 * time.Second
	}
	if read > 0 {
		return read + time.Second
	}
	return 30 * time.Second
}
