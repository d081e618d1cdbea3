// Package pool is a drop-in replacement for go-redis's client constructor that
// makes connection leaks visible and connection limits real.
//
// [NewClient] returns a [Client] that embeds *redis.Client, so every command
// works as before. On top of go-redis it:
//
//   - tracks every checkout: each command and pipeline while it holds a
//     connection, each dedicated [Conn] until its Close, each Pub/Sub until
//     its Close, and the client itself if it is dropped without Close;
//   - reports what is still outstanding, grouped by call site, on demand
//     ([Client.Report]) and at [Client.Close], which returns an error matching
//     [ErrLeaked] when something was left open, and logs a Conn or Pub/Sub
//     garbage-collected without Close as a definite leak
//     ([WithHolderGoneCheck] finds those promptly);
//   - names every socket on the server "<client>.p<pid>.s<socket>" and lists,
//     on each checkout that holds a socket, that name, so that a connection
//     seen in CLIENT LIST leads to the call site holding it ([WithConnNames]);
//   - enforces one hard cap, [WithMaxConnections], on every socket the client
//     opens: the main pool, Pub/Sub (reconnects included), dedicated
//     connections, retries and probes. A caller that needs a socket while the
//     cap is full waits, bounded by its context and PoolTimeout, and then gets
//     an error matching [ErrMaxConnections] that names who holds them.
//
// # How the cap holds
//
// Every socket goes through a dialer that takes a slot of a
// golang.org/x/sync/semaphore before it connects and gives it back when the
// server has seen the socket close, so the server never counts more sockets
// than the cap. The waiting itself happens where go-redis already waits well:
// the main pool is sized to the cap, a dedicated Conn takes a pool turn, and a
// Pub/Sub takes one too, by reserving a pooled connection for its whole life
// and closing that connection's socket so that its own socket can open (an idle
// pooled socket is shed this way; a socket in use by a command, a Conn or a
// Pub/Sub never is). So the pool never has to dial past the cap, and a refusal
// never reaches go-redis's dial retries or its dial circuit breaker.
//
// A command waits for a pool turn as go-redis makes it wait: PoolTimeout per
// attempt, and go-redis retries a pool timeout MaxRetries times. When the pool
// is as large as the cap, a command refused a turn gets a [*LimitError]
// (matching [ErrMaxConnections]): when its last attempt times out (the error
// matches redis.ErrPoolTimeout too), and when its own context's deadline
// passes while it waits for a turn, or for a new socket while every slot of
// the cap is taken (the error matches context.DeadlineExceeded too); a
// deadline that passes during a slow dial with slots free is the network's. go-redis reports both as it always
// does; the client tells them apart by running a command whose context has a
// deadline with a wrapper of that context, which notes whether go-redis's
// connection pool was the code that found the deadline passed (one
// allocation of 24 bytes per such command). A deadline that passes once the
// command has its socket is not a refusal and stays go-redis's error, and a
// cancelled wait ends with context.Canceled.
//
// Two go-redis settings change under the cap, both documented on
// [WithMaxConnections]: PoolSize and MaxActiveConns are lowered to the cap (with
// one WARN log line for a value the caller set), and the dedicated pipeline
// pool is turned off so that pipelines share the main pool's turns.
//
// Reports and logs hold call sites, command names, counts and ages only: never
// command arguments, keys or passwords.
package pool
