package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root is the module root, two levels up from this package.
const root = "../.."

// libraryDirs returns the directories holding non-test library code: every
// package but commands, examples, benchmarks and testdata.
func libraryDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		first := strings.Split(rel, string(filepath.Separator))[0]
		switch {
		case strings.HasPrefix(d.Name(), ".") && rel != ".":
			return filepath.SkipDir
		case first == "cmd" || first == "examples" || first == "bench" || d.Name() == "testdata":
			return filepath.SkipDir
		}
		matches, _ := filepath.Glob(filepath.Join(path, "*.go"))
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				dirs = append(dirs, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// TestNoProcessExits checks that library code never calls log.Fatal*,
// log.Panic*, os.Exit, or panic. The allowed panics are the Pebble
// logger's Fatalf, which Pebble requires not to return, and
// invariants.Check, which panics only in builds with the invariants tag.
func TestNoProcessExits(t *testing.T) {
	allowed := map[string]bool{
		"internal/store/events.go:Fatalf": true,
		"internal/invariants/on.go:Check": true,
	}
	fset := token.NewFileSet()
	for _, dir := range libraryDirs(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, path)
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok {
					continue
				}
				if allowed[filepath.ToSlash(rel)+":"+fn.Name.Name] {
					continue
				}
				ast.Inspect(fn, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					switch fun := call.Fun.(type) {
					case *ast.Ident:
						if fun.Name == "panic" {
							t.Errorf("%s: panic in library code", fset.Position(call.Pos()))
						}
					case *ast.SelectorExpr:
						if pkg, ok := fun.X.(*ast.Ident); ok {
							name := pkg.Name + "." + fun.Sel.Name
							if (pkg.Name == "log" && (strings.HasPrefix(fun.Sel.Name, "Fatal") || strings.HasPrefix(fun.Sel.Name, "Panic"))) || name == "os.Exit" {
								t.Errorf("%s: %s in library code", fset.Position(call.Pos()), name)
							}
						}
					}
					return true
				})
			}
		}
	}
}

// TestNoPackageLog checks that library code does not import package log:
// it logs through log/slog, to Options.Logger, so the application decides
// where messages go.
func TestNoPackageLog(t *testing.T) {
	fset := token.NewFileSet()
	for _, dir := range libraryDirs(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				if imp.Path.Value == `"log"` {
					t.Errorf("%s imports package log; use log/slog", fset.Position(imp.Pos()))
				}
			}
		}
	}
}

// TestEveryPackageHasDoc checks that each package directory has a doc.go.
func TestEveryPackageHasDoc(t *testing.T) {
	for _, dir := range libraryDirs(t) {
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", dir)
		}
	}
}

// TestExamplesImportNoInternal checks that the examples, and the tests in
// examples/apitest that stand for code outside the module, import no
// internal package: they must compile for any user who copies them.
func TestExamplesImportNoInternal(t *testing.T) {
	fset := token.NewFileSet()
	var files int
	err := filepath.WalkDir(filepath.Join(root, "examples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); isInternal(p) {
				t.Errorf("%s imports internal package %s", fset.Position(imp.Pos()), p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "apitest", "api_test.go")); err != nil || files < 3 {
		t.Fatalf("found %d files under examples, and examples/apitest/api_test.go: %v", files, err)
	}
}

// TestOneTTLJudge checks that no library code outside package ttl compares
// TTL stamps with the clock itself: expiry is decided by ttl.Judge (and
// ttl.EntryFilter on top of it) only, so reads, cleanup and snapshots
// cannot disagree.
func TestOneTTLJudge(t *testing.T) {
	for _, dir := range libraryDirs(t) {
		rel, _ := filepath.Rel(root, dir)
		if filepath.ToSlash(rel) == "ttl" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(src), "\n") {
				for _, banned := range []string{"ttl.Expired(", "ExpiresAt("} {
					if strings.Contains(line, banned) {
						t.Errorf("%s:%d: %s outside package ttl: judge with ttl.Judge", path, i+1, banned)
					}
				}
			}
		}
	}
}
