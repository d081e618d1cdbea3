package tracker

import "runtime/pprof"

// ProfileName is the name of the runtime/pprof profile of outstanding
// long-lived checkouts (dedicated connections, Pub/Subs, blocking commands),
// so that `go tool pprof` groups them by call site: with net/http/pprof
// mounted, `go tool pprof http://host/debug/pprof/redisleak.checkouts`.
// Commands and pipelines stay out of it, even under CaptureAll, to keep the
// profile's lock and allocations off their path.
const ProfileName = "redisleak.checkouts"

var checkoutProfile = pprof.NewProfile(ProfileName)
