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
//   - without a cap, refuses nothing bare go-redis would allow: it counts
//     sockets by holder and leaves go-redis's settings as they are;
//   - with one, [WithMaxConnections] (or a MaxActiveConns set in the
//     options), holds every socket the client opens to it: the pools, Pub/Sub
//     (reconnects included), dedicated connections, retries and probes. A
//     caller that needs a socket while every slot is held waits, bounded by
//     its context and PoolTimeout, and then gets an error matching
//     [ErrMaxConnections] that counts the slots and names who holds them.
//
// # What the claims mean
//
// A definite leak is a Conn, Pub/Sub or client garbage-collected without
// being closed by any path: the library's Close, or the Close of the
// embedded go-redis object. A Conn closed through its *redis.Conn is noticed
// at the client's next report, Stats or Close; a client closed through its
// *redis.Client is noticed when it is collected (it then holds no socket).
// The library never closes, nor reports, a go-redis object that code can
// still reach: a caller may keep cn.Conn or c.Client and drop the wrapper.
//
// A refusal ([ErrMaxConnections]) happens only when every slot of the cap is
// held by a socket that is open, being dialed, or closed and not yet
// confirmed gone by the server; its text counts each. A wait that ends while
// slots are free (go-redis's pool is full below the cap, or a dial is slow)
// is not the cap's: the caller gets go-redis's own error, as do callers of a
// server that cannot be reached, refuses TLS or authentication.
//
// # How the cap holds
//
// Every socket goes through a dialer that, under a cap, takes a slot of a
// golang.org/x/sync/semaphore before it connects and gives it back when the
// server has seen the socket close (the client half-closes it and waits for
// the server's EOF, at most [WithDrainTimeout], 5s by default), so the server
// never counts more sockets than the cap while it answers within that bound. The waiting itself happens where go-redis already
// waits well: the main pool is no larger than the cap, a dedicated Conn takes
// a pool turn, and a Pub/Sub opens its socket in what the pools leave of the
// cap or, beyond that, reserves a pool turn for its whole life, closing that
// turn's socket so that its own socket can open (an idle pooled socket is
// closed this way; a socket in use by a command, a Conn or a Pub/Sub never
// is). So the pool never has to dial past the cap, and a refusal never
// reaches go-redis's dial retries or its dial circuit breaker.
//
// A command waits for a pool turn as go-redis makes it wait, with PoolTimeout
// split across go-redis's retries, and gets a [*LimitError] when every slot is
// held: when its last attempt times out (the error matches
// redis.ErrPoolTimeout too), and when its own context's deadline passes while
// it waits for a turn or a new socket (the error matches
// context.DeadlineExceeded too). go-redis reports both as it always does; the
// client tells them apart by running a command that starts while every slot
// is held, and whose context has a deadline, with a wrapper of that context,
// which notes whether go-redis's connection pool was the code that found the
// deadline passed (one allocation of 24 bytes per such command; none while
// the cap has room). A deadline that passes once the command has its socket
// is not a refusal and stays go-redis's error, and a cancelled wait ends with
// context.Canceled.
//
// # Clusters, rings and Sentinel
//
// [NewClusterClient] and [NewRing] build every node client go-redis asks for
// (through ClusterOptions.NewClient, RingOptions.NewClient) as NewClient
// builds a client: each node tracks its checkouts in a scope of its own,
// named "<name>/<addr>", and the client's [ClusterClient.Report] and Close
// merge them. [WithMaxConnectionsPerNode] caps each node, keyed by resolved
// address, counting every socket to it; [WithMaxConnections] caps the nodes
// together, and a node that needs a socket while the total is full closes an
// idle pooled socket of another node to make room. A node's refusal names
// the node and its holders, and matches ErrMaxConnections only, so that
// go-redis's cluster client neither retries it on the same node nor marks
// the node failing. [NewFailoverClient] caps the data sockets of a Sentinel
// client wherever the master is, and its sentinel sockets apart.
// [NewUniversalClient] dispatches as go-redis's does.
//
// Reports and logs hold call sites, command names, counts and ages only: never
// command arguments, keys or passwords.
package pool
