package leakcheck_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/redisleak/redisleak/cmd/redisleakvet/leakcheck"
)

// TestAnalyzer checks the planted leaks (package leaks: every open marked
// with a want comment is reported, with its path), the correct look-alikes
// (package clean: nothing is reported) and the program-lifetime clients of
// package main, against stubs of go-redis and of the pool package.
func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), leakcheck.Analyzer, "leaks", "clean", "mainlife", "odd")
}
