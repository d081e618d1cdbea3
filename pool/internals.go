package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// This file is every place the library depends on go-redis's internals:
// private fields, unexported behaviour, function names. go-redis offers no
// hook around a Pub/Sub's dial, does not say which socket serves a
// connection or whether a Conn was closed, and returns the same deadline
// error whether a command waited for a socket or read too long; the accessors
// below read the little the library needs. Each returns an error (or a
// neutral answer) instead of panicking when an upgrade of go-redis changes
// what it reads; TestGoRedisInternals, and TestCapDeadlineWhileWaiting for the
// function names, fail then. What each
// fallback keeps, and what it loses:
//
//   - pubsubHooksOf (PubSub.exit, PubSub.newConn): without it a Pub/Sub is
//     neither tracked nor placed in the cap's Pub/Sub share, and its dials
//     count as the pool's (still under the cap); an ERROR line says so once.
//   - socketOfInitConn (SingleConnPool.cn): sockets are not named on the
//     server; reports name them by address where they can.
//   - onFirstSocket (StickyConnPool.onFirstConn, a func(*pool.Conn) the
//     library replaces with a func(unsafe.Pointer) of its own): a Conn's
//     socket is not known: reports do not name it, Stats does not count it
//     as a Conn's, and a Pub/Sub beyond the share cannot reserve a pool turn
//     (it is refused with an error saying why).
//   - stickyOf (Conn.connPool, StickyConnPool.state and Close): a Conn closed
//     through its *redis.Conn stays outstanding until its wrapper is
//     collected; a dropped Conn is not closed for its holder, nor reclaimed.
//     Both read by offsets that stickyLayoutOf finds once by reflect,
//     checking every type, since lookups by name cost more than the rest of
//     a Conn.
//   - poolConn.forgetInit (pool.Conn.SetInitConnFunc): a dropped Conn whose
//     socket it initialised stays reachable from go-redis, and is reported
//     when that socket closes rather than at the next collection.
//   - poolWaitOfCaller (function names of go-redis's pool): a deadline that
//     passes while a command waits for a socket under a full cap is reported
//     as go-redis's context.DeadlineExceeded, not as a refusal.
//   - masterReplicaDialer (a function name of go-redis's failover client):
//     a failover client's dials for the master are told from its dials to
//     sentinels by it. Without it every dial counts as a sentinel's: the
//     data sockets are counted and capped per address, but not under the
//     client's cap (TestFailover fails then).
//   - closedByGoRedis (Client.baseClient.apClosed, the flag Close sets):
//     a node client go-redis retired (closed on its own after a topology
//     change) is not found: its watch and state stay until the cluster or
//     ring client's Close, as they did before the library looked.
//   - untrackedPubSub (client.go) counts on go-redis dialing pooled sockets
//     on goroutines of its own, so that a dial on the caller's goroutine that
//     the library did not ask for is a Pub/Sub opened through the embedded
//     *redis.Client. Were go-redis to dial pooled sockets on the caller's
//     goroutine, they would be reported as sockets held by their first
//     caller; TestPubSubThroughEmbeddedClient fails then.
//   - ClusterOptions.NewClient and PubSub.newConn of a cluster client (both
//     public or read as above): a cluster Pub/Sub's dial carries its marker
//     through go-redis's node choice to the node client's dialer.

// masterReplicaDialer names the function of go-redis's failover client that
// dials the master or a replica (its sentinel clients dial from elsewhere):
// a frame's function name contains it, whether or not it was inlined.
const masterReplicaDialer = ".masterReplicaDialer."

// pubsubHooks reaches two private fields of redis.PubSub: the dial function,
// wrapped so that every dial of the PubSub first reserves its turn, and the
// exit channel, closed by PubSub.Close. Both are set when the PubSub is
// created, before it is shared, so reading and replacing them here is
// race-free.
type pubsubHooks struct {
	exit    <-chan struct{}
	newConn reflect.Value // settable func(ctx, addr string, channels []string) (*pool.Conn, error)
}

var (
	errorType   = reflect.TypeFor[error]()
	contextType = reflect.TypeFor[context.Context]()
	netConnType = reflect.TypeFor[net.Conn]()
)

func pubsubHooksOf(ps *redis.PubSub) (pubsubHooks, error) {
	v := reflect.ValueOf(ps).Elem()
	exitField := v.FieldByName("exit")
	if !exitField.IsValid() || exitField.Type() != reflect.TypeFor[chan struct{}]() {
		return pubsubHooks{}, errors.New("redis.PubSub has no field exit chan struct{}")
	}
	dial := v.FieldByName("newConn")
	if !dial.IsValid() || dial.Kind() != reflect.Func {
		return pubsubHooks{}, errors.New("redis.PubSub has no func field newConn")
	}
	t := dial.Type()
	if t.NumIn() < 1 || t.In(0) != contextType || t.NumOut() != 2 || t.Out(1) != errorType {
		return pubsubHooks{}, fmt.Errorf("redis.PubSub.newConn has type %s, want func(context.Context, ...) (conn, error)", t)
	}
	exit := *(*chan struct{})(unsafe.Pointer(exitField.UnsafeAddr()))
	if exit == nil {
		return pubsubHooks{}, errors.New("redis.PubSub.exit is nil")
	}
	return pubsubHooks{
		exit:    exit,
		newConn: reflect.NewAt(t, unsafe.Pointer(dial.UnsafeAddr())).Elem(),
	}, nil
}

// aroundDial makes every dial of the PubSub call before first, with the
// dial's context, and dial with the context before returns (when before
// fails, the dial fails with its error); and connected with the socket once
// the dial and go-redis's handshake succeeded.
func (h pubsubHooks) aroundDial(before func(context.Context) (context.Context, error), connected func(*socket)) {
	orig := reflect.ValueOf(h.newConn.Interface())
	t := h.newConn.Type()
	h.newConn.Set(reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		ctx, _ := args[0].Interface().(context.Context)
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, err := before(ctx)
		if err != nil {
			return []reflect.Value{reflect.Zero(t.Out(0)), reflect.ValueOf(&err).Elem()}
		}
		args[0] = reflect.ValueOf(&ctx).Elem()
		out := orig.Call(args)
		if out[1].IsNil() {
			if s := socketOfPoolConn(out[0]); s != nil {
				connected(s)
			}
		}
		return out
	}))
}

// connPoolOf returns the pool behind a redis.Conn, usable through reflect: a
// *pool.SingleConnPool for the connection go-redis hands OnConnect, a
// *pool.StickyConnPool for Client.Conn.
func connPoolOf(rc *redis.Conn) (reflect.Value, error) {
	f := fieldByName(reflect.ValueOf(rc).Elem(), "connPool")
	if !f.IsValid() || f.Kind() != reflect.Interface {
		return reflect.Value{}, errors.New("redis.Conn has no interface field connPool")
	}
	p := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Elem()
	if !p.IsValid() || p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, errors.New("redis.Conn.connPool is not a pointer to a struct")
	}
	return p, nil
}

// sticky is the pool behind one redis.Conn, go-redis's StickyConnPool: it
// says whether the Conn was closed, which go-redis offers no public way to
// ask, and closes a Conn nothing references any longer. It holds no reference
// to the redis.Conn itself, so it can outlive it.
type sticky struct {
	state *atomic.Uint32 // stickyClosed once the Conn is closed
	pool  unsafe.Pointer // the *StickyConnPool
}

// stickyClosed is the state StickyConnPool.Close sets.
const stickyClosed = 2

// stickyOf returns the pool behind rc.
func stickyOf(rc *redis.Conn) (sticky, error) {
	l, err := stickyLayoutOf(rc)
	if err != nil {
		return sticky{}, err
	}
	p, err := l.poolOf(rc)
	if err != nil {
		return sticky{}, err
	}
	return sticky{state: (*atomic.Uint32)(unsafe.Add(p, l.stateOff)), pool: p}, nil
}

// known reports whether the pool could be read.
func (s sticky) known() bool { return s.state != nil }

// closed reports whether the Conn was closed, by the library or through go-redis.
func (s sticky) closed() bool { return s.known() && s.state.Load() == stickyClosed }

// close closes the Conn's pool, which puts its socket back in the client's.
func (s sticky) close() error {
	c, ok := reflect.NewAt(stickyLayoutCache.poolType.Elem(), s.pool).Interface().(interface{ Close() error })
	if !ok {
		return fmt.Errorf("%s has no method Close", stickyLayoutCache.poolType)
	}
	return c.Close()
}

// stickyLayout is where the fields the library reads of a Conn's pool lie in
// memory: found by reflect, with every type checked, from the first Conn,
// then read by offset, since reflect's lookups by name cost more than the
// rest of a Conn. Every Conn's pool is a *StickyConnPool; one that is not is
// an error.
type stickyLayout struct {
	poolOff    uintptr        // of redis.Conn's connPool, an interface
	poolItab   unsafe.Pointer // connPool's type word when it holds a *StickyConnPool
	poolType   reflect.Type   // *StickyConnPool
	stateOff   uintptr        // of StickyConnPool.state, an atomic.Uint32
	onFirstOff uintptr        // of StickyConnPool.onFirstConn, a func(*pool.Conn)
	connType   reflect.Type   // go-redis's pool.Conn
}

var (
	stickyLayoutOnce  sync.Once
	stickyLayoutCache stickyLayout
	stickyLayoutErr   error
)

// stickyLayoutOf returns the layout, finding it from rc the first time.
func stickyLayoutOf(rc *redis.Conn) (*stickyLayout, error) {
	stickyLayoutOnce.Do(func() { stickyLayoutCache, stickyLayoutErr = findStickyLayout(rc) })
	return &stickyLayoutCache, stickyLayoutErr
}

func findStickyLayout(rc *redis.Conn) (stickyLayout, error) {
	var l stickyLayout
	connType := reflect.TypeFor[redis.Conn]()
	f, ok := connType.FieldByName("connPool")
	if !ok || f.Type.Kind() != reflect.Interface {
		return l, errors.New("redis.Conn has no interface field connPool")
	}
	// The offset of a field reached through embedded structs, none of them
	// through a pointer.
	t := connType
	for _, i := range f.Index {
		sf := t.Field(i)
		l.poolOff += sf.Offset
		t = sf.Type
		if t.Kind() != reflect.Struct && t.Kind() != reflect.Interface {
			return l, fmt.Errorf("redis.Conn reaches connPool through a %s", t.Kind())
		}
	}
	p, err := connPoolOf(rc)
	if err != nil {
		return l, err
	}
	l.poolType = p.Type()
	if l.poolType.Elem().Name() != "StickyConnPool" {
		return l, fmt.Errorf("a Conn's pool is a %s, want a *StickyConnPool", l.poolType)
	}
	l.poolItab = (*[2]unsafe.Pointer)(unsafe.Add(unsafe.Pointer(rc), l.poolOff))[0]
	state, ok := l.poolType.Elem().FieldByName("state")
	if !ok || state.Type != reflect.TypeFor[atomic.Uint32]() || len(state.Index) != 1 {
		return l, fmt.Errorf("%s has no field state atomic.Uint32", l.poolType)
	}
	l.stateOff = state.Offset
	first, ok := l.poolType.Elem().FieldByName("onFirstConn")
	if !ok || len(first.Index) != 1 || !isFuncOfOnePointer(first.Type) {
		return l, fmt.Errorf("%s has no field onFirstConn func(*Conn)", l.poolType)
	}
	l.onFirstOff, l.connType = first.Offset, first.Type.In(0).Elem()
	if _, ok := reflect.NewAt(l.poolType.Elem(), nil).Interface().(interface{ Close() error }); !ok {
		return l, fmt.Errorf("%s has no method Close", l.poolType)
	}
	return l, nil
}

// isFuncOfOnePointer reports whether t is func(*T) for some T: a function
// value the library can store there in place of one of its own of type
// func(unsafe.Pointer), which Go calls the same way.
func isFuncOfOnePointer(t reflect.Type) bool {
	return t.Kind() == reflect.Func && t.NumIn() == 1 && t.NumOut() == 0 && !t.IsVariadic() &&
		t.In(0).Kind() == reflect.Pointer
}

// poolOf returns the *StickyConnPool behind rc.
func (l *stickyLayout) poolOf(rc *redis.Conn) (unsafe.Pointer, error) {
	iface := (*[2]unsafe.Pointer)(unsafe.Add(unsafe.Pointer(rc), l.poolOff))
	if iface[0] != l.poolItab || iface[1] == nil {
		return nil, errors.New("a Conn's pool is not a *StickyConnPool")
	}
	return iface[1], nil
}

// field returns the named field of the struct p points to, usable through
// reflect, checking its kind.
func field(p reflect.Value, name string, kind reflect.Kind) (reflect.Value, error) {
	f := fieldByName(p.Elem(), name)
	if !f.IsValid() || f.Kind() != kind {
		return reflect.Value{}, fmt.Errorf("%s has no %s field %s", p.Type(), kind, name)
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem(), nil
}

// socketOfInitConn returns the socket of the connection go-redis hands to
// OnConnect, which runs on a pool of that one connection.
func socketOfInitConn(rc *redis.Conn) (*socket, error) {
	p, err := connPoolOf(rc)
	if err != nil {
		return nil, err
	}
	cn, err := field(p, "cn", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	s := socketOfPoolConn(cn)
	if s == nil {
		return nil, fmt.Errorf("the connection of %s is not one the client dialed", p.Type())
	}
	return s, nil
}

// socketTaker is told of the socket a Conn takes; see onFirstSocket.
type socketTaker interface{ took(*socket, poolConn) }

// tookFunc is a function as a socketTaker.
type tookFunc func(*socket, poolConn)

func (f tookFunc) took(s *socket, pc poolConn) { f(s, pc) }

// onFirstSocket tells t of the socket a Conn takes from the pool at its
// first command, and of go-redis's connection around it, after any callback
// go-redis set there itself (StickyConnPool.onFirstConn, which go-redis sets
// through SetOnFirstConn before the Conn is used). It stores a function of
// its own there, of type func(unsafe.Pointer) in place of func(*pool.Conn):
// one pointer argument either way, which Go passes the same way. t is an
// interface, not a func, so that a Conn passes itself without allocating a
// method value.
func onFirstSocket(rc *redis.Conn, t socketTaker) error {
	l, err := stickyLayoutOf(rc)
	if err != nil {
		return err
	}
	p, err := l.poolOf(rc)
	if err != nil {
		return err
	}
	slot := (*func(unsafe.Pointer))(unsafe.Add(p, l.onFirstOff))
	prev := *slot
	*slot = func(cn unsafe.Pointer) {
		if prev != nil {
			prev(cn)
		}
		if cn == nil {
			return
		}
		pc := reflect.NewAt(l.connType, cn)
		if s := socketOfPoolConn(pc); s != nil {
			t.took(s, poolConn{pc})
		}
	}
	return nil
}

// poolConn is go-redis's connection around a socket: a *pool.Conn.
type poolConn struct{ v reflect.Value }

// forgetInit drops the function go-redis keeps on the connection to
// initialise it again (after a maintenance handoff of Redis Enterprise). It is
// a closure over the client that initialised the socket first; when that is a
// Conn, it keeps the Conn reachable for as long as the socket lives, and a
// Conn nobody else holds could never be found dropped. Without it a handoff
// of that socket fails, and go-redis closes it.
func (c poolConn) forgetInit() error {
	set := method(c.v, "SetInitConnFunc")
	if !set.IsValid() || set.Type().NumIn() != 1 || set.Type().In(0).Kind() != reflect.Func {
		return fmt.Errorf("%s has no method SetInitConnFunc(func)", c.v.Type())
	}
	set.Call([]reflect.Value{reflect.Zero(set.Type().In(0))})
	return nil
}

// socketOfPoolConn returns the socket under a go-redis *pool.Conn, or nil when
// cn is not one or its connection is not one the client dialed.
func socketOfPoolConn(cn reflect.Value) *socket {
	if !cn.IsValid() || cn.Kind() != reflect.Pointer || cn.IsNil() {
		return nil
	}
	get := method(cn, "GetNetConn")
	if !get.IsValid() || get.Type().NumIn() != 0 || get.Type().NumOut() != 1 || get.Type().Out(0) != netConnType {
		return nil
	}
	nc, _ := get.Call(nil)[0].Interface().(net.Conn)
	return asSocket(nc)
}

// asSocket returns the library's socket behind c, or nil.
func asSocket(c net.Conn) *socket {
	switch s := c.(type) {
	case *socket:
		return s
	case sysSocket:
		return s.socket
	}
	return nil
}

// memberKey names a field or method of a type.
type memberKey struct {
	t    reflect.Type
	name string
}

// Lookups by name, which reflect makes slow (a dedicated Conn does three),
// cached by type and name.
var (
	methodIndexes sync.Map // memberKey -> int
	fieldIndexes  sync.Map // memberKey -> []int, nil when there is none
)

// method returns v's method called name, or the zero Value.
func method(v reflect.Value, name string) reflect.Value {
	key := memberKey{v.Type(), name}
	if i, ok := methodIndexes.Load(key); ok {
		return v.Method(i.(int))
	}
	m, ok := v.Type().MethodByName(name)
	if !ok {
		return reflect.Value{}
	}
	methodIndexes.Store(key, m.Index)
	return v.Method(m.Index)
}

// fieldByName returns the field of the struct v called name, embedded
// structs' fields included, or the zero Value.
func fieldByName(v reflect.Value, name string) reflect.Value {
	key := memberKey{v.Type(), name}
	index, ok := fieldIndexes.Load(key)
	if !ok {
		var path []int
		if f, found := v.Type().FieldByName(name); found {
			path = f.Index
		}
		index, _ = fieldIndexes.LoadOrStore(key, path)
	}
	if path := index.([]int); path != nil {
		return v.FieldByIndex(path)
	}
	return reflect.Value{}
}

// Functions of go-redis in which a command waits for a socket: for a pool
// turn in the semaphore that counts turns, for anything else (a dial, a
// connection being drained) in other methods of the connection pool.
const (
	turnSemaphore = "github.com/redis/go-redis/v9/internal.(*FastSemaphore)."
	turnWait      = "github.com/redis/go-redis/v9/internal/pool.(*ConnPool).waitTurn"
	connPoolFuncs = "github.com/redis/go-redis/v9/internal/pool.(*ConnPool)."
)

// poolWaitOfCaller returns which wait of go-redis's connection pool called
// socketWait.Err, or waitNone. It runs only once a deadline has passed.
func poolWaitOfCaller() int32 {
	var pcs [2]uintptr
	// Skip runtime.Callers, poolWaitOfCaller and socketWait.Err.
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, turnSemaphore), f.Function == turnWait:
			return waitTurn
		case strings.HasPrefix(f.Function, connPoolFuncs):
			return waitDial
		}
		if !more {
			return waitNone
		}
	}
}

// closedLayout is where a redis.Client keeps the flag its Close sets:
// Client.baseClient (a pointer) .apClosed (a *atomic.Bool, shared with the
// client's WithTimeout clones, which share its pools). Found once by
// reflect, every type checked, then read by offset.
type closedLayout struct {
	baseOff, flagOff uintptr
}

var (
	closedLayoutOnce sync.Once
	closedLayoutOf   closedLayout
	closedLayoutErr  error
)

func findClosedLayout() (closedLayout, error) {
	var l closedLayout
	base, ok := reflect.TypeFor[redis.Client]().FieldByName("baseClient")
	if !ok || len(base.Index) != 1 || base.Type.Kind() != reflect.Pointer || base.Type.Elem().Kind() != reflect.Struct {
		return l, errors.New("redis.Client has no field baseClient pointing to a struct")
	}
	flag, ok := base.Type.Elem().FieldByName("apClosed")
	if !ok || len(flag.Index) != 1 || flag.Type != reflect.TypeFor[*atomic.Bool]() {
		return l, fmt.Errorf("%s has no field apClosed *atomic.Bool", base.Type)
	}
	return closedLayout{baseOff: base.Offset, flagOff: flag.Offset}, nil
}

// closedByGoRedis reports whether rc was closed: go-redis closes the node
// clients of a cluster or ring itself when it retires them, and says so to
// no one.
func closedByGoRedis(rc *redis.Client) (bool, error) {
	closedLayoutOnce.Do(func() { closedLayoutOf, closedLayoutErr = findClosedLayout() })
	if closedLayoutErr != nil {
		return false, closedLayoutErr
	}
	base := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(rc), closedLayoutOf.baseOff))
	if base == nil {
		return false, errors.New("redis.Client.baseClient is nil")
	}
	flag := *(**atomic.Bool)(unsafe.Add(base, closedLayoutOf.flagOff))
	return flag != nil && flag.Load(), nil
}
