package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// modulePath is the module's import path.
const modulePath = "github.com/pebblestate/pebblestate"

// isInternal reports whether an import path is an internal package, which
// no code outside the module may import.
func isInternal(path string) bool {
	return path == "internal" || strings.HasPrefix(path, "internal/") ||
		strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

// listedPackage is the part of `go list -json` output the API check reads.
type listedPackage struct {
	ImportPath string
	Name       string
	Export     string
	Module     *struct{ Path string }
}

// loadPublicPackages loads the types of the module's public library
// packages (neither internal nor commands) from the compiler's export data,
// which `go list -export` takes from the build cache: type-checking them
// and Pebble from source (importer "source") takes minutes on a small
// machine. It returns the packages sorted by path.
func loadPublicPackages(t *testing.T) []*types.Package {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the API check needs the go command: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-export", "-deps", "-json=ImportPath,Name,Export,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	exports := make(map[string]string)
	var public []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == modulePath && p.Name != "main" && !isInternal(p.ImportPath) {
			public = append(public, p.ImportPath)
		}
	}
	sort.Strings(public)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	pkgs := make([]*types.Package, 0, len(public))
	for _, path := range public {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs
}

// apiChecker walks the exported surface of public packages and records
// every place where it mentions a type declared in an internal package
// that no public alias re-exports.
type apiChecker struct {
	// reexported are the internal types a public alias names, such as
	// backend.KeyGroupRange = keygroup.Range; users name them by the alias.
	reexported map[*types.TypeName]string
	// visited are the named types whose surface has been checked.
	visited map[*types.TypeName]bool
	// offenders are the findings, one line each.
	offenders []string
}

// checkAPI returns the offenders in pkgs, sorted: the exported constants,
// variables, functions, types, fields and methods whose types mention a
// type declared in an internal package. An exported alias in a public
// package whose target is an internal named type (type KeyGroupRange =
// keygroup.Range) re-exports it: users name it by the alias, so it is no
// offender, but its exported fields and methods become public API and are
// checked. checkAPI also returns those re-exported types, each with the
// alias that names it.
func checkAPI(pkgs []*types.Package) (offenders []string, reexported map[*types.TypeName]string) {
	c := &apiChecker{reexported: make(map[*types.TypeName]string), visited: make(map[*types.TypeName]bool)}
	for _, pkg := range pkgs {
		for _, name := range pkg.Scope().Names() {
			tn, ok := pkg.Scope().Lookup(name).(*types.TypeName)
			if !ok || !tn.Exported() || !tn.IsAlias() {
				continue
			}
			if n, ok := types.Unalias(tn.Type()).(*types.Named); ok && n.TypeArgs().Len() == 0 && n.Obj().Pkg() != nil && isInternal(n.Obj().Pkg().Path()) {
				c.reexported[n.Obj()] = pkg.Name() + "." + tn.Name()
			}
		}
	}
	for _, pkg := range pkgs {
		for _, name := range pkg.Scope().Names() {
			obj := pkg.Scope().Lookup(name)
			if !obj.Exported() {
				continue
			}
			where := pkg.Name() + "." + name
			switch obj := obj.(type) {
			case *types.TypeName:
				if obj.IsAlias() {
					if n, ok := types.Unalias(obj.Type()).(*types.Named); ok && c.reexported[n.Obj()] != "" {
						c.surface(n, where)
						continue
					}
					// The alias itself is nameable; what it stands for must be too.
					if a, ok := obj.Type().(*types.Alias); ok {
						c.typ(a.Rhs(), where+" (alias)")
					}
					continue
				}
				if n, ok := obj.Type().(*types.Named); ok {
					c.surface(n, where)
				}
			default: // constants, variables, functions
				c.typ(obj.Type(), where)
			}
		}
	}
	sort.Strings(c.offenders)
	return c.offenders, c.reexported
}

// surface checks a named type's definition: its type parameters, its
// underlying type and its exported methods (of either receiver, and
// promoted from embedded fields).
func (c *apiChecker) surface(n *types.Named, where string) {
	n = n.Origin()
	if c.visited[n.Obj()] {
		return
	}
	c.visited[n.Obj()] = true
	c.typeParams(n.TypeParams(), where)
	c.typ(n.Underlying(), where)
	// The method set of *T holds the methods of both receivers and those
	// promoted from embedded fields, exported or not.
	if _, ok := n.Underlying().(*types.Interface); !ok {
		ms := types.NewMethodSet(types.NewPointer(n))
		for sel := range ms.Methods() {
			if m := sel.Obj(); m.Exported() {
				c.typ(m.Type(), where+"."+m.Name())
			}
		}
	}
}

// typeParams checks the constraints of type parameters.
func (c *apiChecker) typeParams(tps *types.TypeParamList, where string) {
	for tp := range tps.TypeParams() {
		c.typ(tp.Constraint(), where+" type parameter "+tp.Obj().Name())
	}
}

// typ checks a type used at where.
func (c *apiChecker) typ(t types.Type, where string) {
	switch t := t.(type) {
	case *types.Basic, *types.TypeParam, nil:
	case *types.Alias:
		obj := t.Obj()
		if obj.Pkg() != nil && !isInternal(obj.Pkg().Path()) && obj.Exported() {
			for a := range t.TypeArgs().Types() {
				c.typ(a, where)
			}
			return // a public alias is nameable; its declaration is checked on its own
		}
		c.typ(types.Unalias(t), where)
	case *types.Named:
		obj := t.Obj()
		for a := range t.TypeArgs().Types() {
			c.typ(a, where)
		}
		switch {
		case obj.Pkg() == nil: // error, comparable
		case isInternal(obj.Pkg().Path()):
			if c.reexported[t.Origin().Obj()] == "" {
				c.offenders = append(c.offenders, fmt.Sprintf("%s: mentions %s.%s, declared in internal package %s",
					where, obj.Pkg().Name(), obj.Name(), obj.Pkg().Path()))
			}
		case strings.HasPrefix(obj.Pkg().Path(), modulePath) && !obj.Exported():
			// An unexported type of ours that the API hands out: users
			// reach its exported fields and methods.
			c.surface(t, obj.Pkg().Name()+"."+obj.Name())
		}
	case *types.Pointer:
		c.typ(t.Elem(), where)
	case *types.Slice:
		c.typ(t.Elem(), where)
	case *types.Array:
		c.typ(t.Elem(), where)
	case *types.Chan:
		c.typ(t.Elem(), where)
	case *types.Map:
		c.typ(t.Key(), where)
		c.typ(t.Elem(), where)
	case *types.Signature:
		c.typeParams(t.TypeParams(), where)
		for i := range t.Params().Len() {
			v := t.Params().At(i)
			name := v.Name()
			if name == "" || name == "_" {
				name = fmt.Sprint(i)
			}
			c.typ(v.Type(), where+" parameter "+name)
		}
		for v := range t.Results().Variables() {
			c.typ(v.Type(), where+" result")
		}
	case *types.Struct:
		for f := range t.Fields() {
			// An embedded unexported type promotes its exported fields and
			// methods: typ checks them through its surface.
			if f.Exported() || f.Embedded() {
				c.typ(f.Type(), where+"."+f.Name())
			}
		}
	case *types.Interface:
		for m := range t.ExplicitMethods() {
			if m.Exported() {
				c.typ(m.Type(), where+"."+m.Name())
			}
		}
		for e := range t.EmbeddedTypes() {
			c.typ(e, where)
		}
	case *types.Union:
		for term := range t.Terms() {
			c.typ(term.Type(), where)
		}
	case *types.Tuple:
		for v := range t.Variables() {
			c.typ(v.Type(), where)
		}
	default:
		c.offenders = append(c.offenders, fmt.Sprintf("%s: type %T is unknown to the API check", where, t))
	}
}

// TestPublicAPIAvoidsInternalTypes checks that users outside the module
// can name every type the public API hands them: no exported constant,
// variable, function signature, type, field or method of a public package
// mentions a type declared in an internal package, unless a public alias
// re-exports that type (type KeyGroupRange = keygroup.Range).
func TestPublicAPIAvoidsInternalTypes(t *testing.T) {
	pkgs := loadPublicPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("loaded %d public packages; the listing is broken", len(pkgs))
	}
	offenders, reexported := checkAPI(pkgs)
	for _, o := range offenders {
		t.Error(o)
	}
	for tn, alias := range reexported {
		t.Logf("%s re-exports %s.%s", alias, tn.Pkg().Path(), tn.Name())
	}
}

// TestCheckAPIFindsOffenders runs the API check on two small packages, an
// internal one and a public one using it, and compares its findings with
// the offenders planted in the public one.
func TestCheckAPIFindsOffenders(t *testing.T) {
	srcs := []struct{ path, src string }{
		{modulePath + "/internal/rec", `package rec
type Rec struct {
	Kind Kind
	Note string
}
type Kind uint8
type Hidden struct{ X int }
func (Rec) Clone() Rec { return Rec{} }
func (Rec) Peek() Hidden { return Hidden{} }
type List[T any] []T
`},
		{modulePath + "/pub", `package pub
import "github.com/pebblestate/pebblestate/internal/rec"
// Rec re-exports rec.Rec: allowed, but its Kind field and Peek method
// then offend.
type Rec = rec.Rec
// Recs is an alias, but not of a named internal type.
type Recs = []rec.Hidden
type Handle struct {
	Recs    []rec.Rec    // fine: named by pub.Rec
	H       *rec.Hidden
	private rec.Hidden   // unexported: fine
	M       map[string]rec.List[int]
	F       func(rec.Kind) error
	I       interface{ Get() chan rec.Hidden }
}
func Do(h rec.Hidden, r Rec) {}
func New() *impl { return nil }
type impl struct{}
func (*impl) Get() (rec.Hidden, error) { return rec.Hidden{}, nil }
func (*impl) get() rec.Hidden { return rec.Hidden{} }
var V rec.Kind
const C = rec.Kind(3)
type G[T interface{ ~[]rec.Hidden }] struct{}
func (Handle) Fine() Rec { return Rec{} }
type Outer struct{ inner }
type inner struct{ Deep rec.Hidden }
func (inner) Promoted() rec.Kind { return 0 }
`},
	}
	fset := token.NewFileSet()
	pkgs := map[string]*types.Package{}
	conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
		if p, ok := pkgs[path]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("unknown package %s", path)
	})}
	for _, s := range srcs {
		f, err := parser.ParseFile(fset, s.path+".go", s.src, 0)
		if err != nil {
			t.Fatal(err)
		}
		pkg, err := conf.Check(s.path, fset, []*ast.File{f}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pkgs[s.path] = pkg
	}
	got, reexported := checkAPI([]*types.Package{pkgs[modulePath+"/pub"]})
	if len(reexported) != 1 {
		t.Errorf("re-exported %v, want rec.Rec alone", reexported)
	}
	var where []string
	for _, o := range got {
		where = append(where, o[:strings.Index(o, ": ")]+" "+o[strings.LastIndex(o, " ")+1:])
	}
	in := modulePath + "/internal/rec"
	want := []string{
		"pub.C " + in,
		"pub.Do parameter h " + in,
		"pub.G type parameter T " + in,
		"pub.Handle.F parameter 0 " + in,
		"pub.Handle.H " + in,
		"pub.Handle.I.Get result " + in,
		"pub.Handle.M " + in,
		"pub.Outer.Promoted result " + in,
		"pub.Rec.Kind " + in,
		"pub.Rec.Peek result " + in,
		"pub.Recs (alias) " + in,
		"pub.V " + in,
		"pub.impl.Get result " + in,
		"pub.inner.Deep " + in,
		"pub.inner.Promoted result " + in,
	}
	if !slices.Equal(where, want) {
		t.Errorf("offenders:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
