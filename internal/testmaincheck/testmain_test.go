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

func TestMain(m *testing.M) { redisleak.VerifyTestMain(m) }

// TestMaybeLeak leaves a Conn open when REDISLEAK_TESTMAIN_LEAK=1, and closes
// it otherwise; the test itself passes either way.
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
	if os.Getenv("REDISLEAK_TESTMAIN_LEAK") != "1" {
		_ = cn.Close()
	}
	_ = c.Close()
}
