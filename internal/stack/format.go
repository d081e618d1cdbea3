package stack

import (
	"fmt"
	"path/filepath"
)

// FrameString renders a frame as "function (dir/file.go:line)": the form
// reports and logs name a call site by.
func FrameString(function, file string, line int) string {
	return fmt.Sprintf("%s (%s)", function, ShortPos(file, line))
}

// ShortPos renders a position as "dir/file.go:line": enough to find the
// line, short enough to read in a log.
func ShortPos(file string, line int) string {
	dir, base := filepath.Split(file)
	return fmt.Sprintf("%s:%d", filepath.Join(filepath.Base(dir), base), line)
}
