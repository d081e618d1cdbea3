package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exampleVariants are the repository's examples that show a leak: a bad
// function that leaves a handle open and a fixed one that does not.
var exampleVariants = []struct {
	dir, bad, fixed string
}{
	{dir: "connerrorpath", bad: "takeTicketBad", fixed: "takeTicketFixed"},
	{dir: "pubsubgoroutine", bad: "listenBad", fixed: "listenFixed"},
	{dir: "clientperrequest", bad: "handleBad", fixed: "handleFixed"},
}

// finding is one diagnostic of go vet's output.
type finding struct {
	file string // as printed, relative to the module root
	line int
	msg  string
}

var findingLine = regexp.MustCompile(`^(.+\.go):(\d+):\d+: (.*)$`)

// TestExamples builds redisleakvet, runs it through go vet -vettool over
// the examples with a bad and a fixed variant, and checks that each bad
// variant's open is reported, that nothing in a fixed variant is, and that
// nothing else in those examples is either.
func TestExamples(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot build the vet tool")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := moduleRoot(ctx, t, goTool)

	tool := filepath.Join(t.TempDir(), "redisleakvet")
	run(ctx, t, root, goTool, "build", "-o", tool, "./cmd/redisleakvet")

	args := []string{"vet", "-vettool=" + tool}
	for _, ex := range exampleVariants {
		args = append(args, "./examples/"+ex.dir)
	}
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	var findings []finding
	for l := range strings.SplitSeq(string(out), "\n") {
		if m := findingLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[2])
			findings = append(findings, finding{file: filepath.ToSlash(m[1]), line: n, msg: m[3]})
		}
	}
	if err != nil && len(findings) == 0 {
		// go vet exits non-zero on findings; without any, it failed.
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	claimed := make([]bool, len(findings))
	for _, ex := range exampleVariants {
		file := filepath.Join(root, "examples", ex.dir, "main.go")
		funcs := funcLines(t, file)
		bad, ok := funcs[ex.bad]
		if !ok {
			t.Fatalf("%s: no func %s", file, ex.bad)
		}
		fixed, ok := funcs[ex.fixed]
		if !ok {
			t.Fatalf("%s: no func %s", file, ex.fixed)
		}
		reported := false
		for i, f := range findings {
			if !strings.HasSuffix(f.file, "examples/"+ex.dir+"/main.go") {
				continue
			}
			claimed[i] = true
			switch {
			case bad.contains(f.line):
				reported = true
				t.Logf("%s: %s: %s", ex.dir, ex.bad, f.msg)
			case fixed.contains(f.line):
				t.Errorf("%s: fixed variant %s reported at line %d: %s", ex.dir, ex.fixed, f.line, f.msg)
			default:
				t.Errorf("%s: reported outside the bad variant at line %d: %s", ex.dir, f.line, f.msg)
			}
		}
		if !reported {
			t.Errorf("%s: bad variant %s (lines %d-%d) not reported; go vet said:\n%s", ex.dir, ex.bad, bad.from, bad.to, out)
		}
	}
	for i, f := range findings {
		if !claimed[i] {
			t.Errorf("unexpected finding %s:%d: %s", f.file, f.line, f.msg)
		}
	}
}

// moduleRoot returns the directory of the module's go.mod.
func moduleRoot(ctx context.Context, t *testing.T, goTool string) string {
	t.Helper()
	gomod := strings.TrimSpace(run(ctx, t, ".", goTool, "env", "GOMOD"))
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatal("not inside a module")
	}
	return filepath.Dir(gomod)
}

// run runs the go command in dir and returns its standard output, failing
// the test on an error.
func run(ctx context.Context, t *testing.T, dir, goTool string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// lines is the line range of a function declaration.
type lines struct{ from, to int }

func (l lines) contains(n int) bool { return l.from <= n && n <= l.to }

// funcLines returns the line range of each top-level function or method
// of a file, by name.
func funcLines(t *testing.T, file string) map[string]lines {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	funcs := make(map[string]lines)
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			funcs[fd.Name.Name] = lines{fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line}
		}
	}
	return funcs
}
