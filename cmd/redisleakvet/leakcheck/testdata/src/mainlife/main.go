// Command mainlife creates its clients in main: they live as long as the
// program, which is fine. Its handler, though, opens one per request.
package main

import (
	"context"
	"net/http"

	"github.com/redis/go-redis/v9"
	"github.com/redisleak/redisleak/pool"
)

var global = redis.NewClient(&redis.Options{})

func main() {
	rdb := redis.NewClient(&redis.Options{})
	pc, err := pool.NewClient(&redis.Options{})
	if err != nil {
		return
	}
	rdb.Get(context.Background(), "k")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		pc.Get(r.Context(), "k")
		per := redis.NewClient(&redis.Options{}) // want `^\*redis\.Client from redis\.NewClient is never closed`
		per.Get(r.Context(), "k")
	})
}
