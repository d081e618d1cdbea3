//go:build !redisleakdebug

package tracker

// debugBuild is true in binaries built with -tags redisleakdebug.
const debugBuild = false
