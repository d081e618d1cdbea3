// Package testmaincheck holds a test binary whose TestMain is
// redisleak.VerifyTestMain, run by the redisleak package's tests to check
// that VerifyTestMain fails a leaking run and passes a clean one.
package testmaincheck
