module github.com/redisleak/redisleak

go 1.26.0
