package testmaincheck

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak"
	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
)

// shared is a Conn the tests leave open for TestMain's cleanup to close, as a
// package-level client would be.
var shared *pool.Conn

func TestMain(m *testing.M) {
	redisleak.VerifyTestMain(m, redisleak.Cleanup(func(int) {
		if shared != nil {
			_ = shared.Close()
		}
	}))
}

// TestMaybeLeak leaves a Conn open when REDISLEAK_TESTMAIN_LEAK=1, leaves it
// to TestMain's cleanup with REDISLEAK_TESTMAIN_LEAK=cleanup, and closes it
// otherwise; the test itself passes either way.
func TestMaybeLeak(t *testing.T) {
	srv := testserver.Mini(t)
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	cn := c.Conn()
	if err := cn.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	switch os.Getenv("REDISLEAK_TESTMAIN_LEAK") {
	case "1":
	case "cleanup":
		shared = cn
	default:
		_ = cn.Close()
	}
	_ = c.Close()
}
