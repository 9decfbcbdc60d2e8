package state

import (
	"reflect"
	"testing"

	"github.com/classroute/classroute/router"
)

// TestCloneWorkload fills every field of a workload and checks that the
// clone shares no slice or pointer with it, outside the label (whose
// slices are never modified, by the label package's contract).
func TestCloneWorkload(t *testing.T) {
	w := &router.Workload{}
	fill(reflect.ValueOf(w).Elem())
	c := cloneWorkload(w)
	if !reflect.DeepEqual(&c, w) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, *w)
	}
	shared(t, "Workload", reflect.ValueOf(w).Elem(), reflect.ValueOf(&c).Elem())
}

// fill sets every settable field of v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// shared fails for every slice, pointer or map that a and b share.
func shared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Struct:
		if p := a.Type().PkgPath(); p == "github.com/classroute/classroute/router/label" || p == "github.com/classroute/classroute/router/marking" {
			return // labels are immutable values
		}
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				shared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	case reflect.Slice, reflect.Pointer, reflect.Map:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			t.Errorf("%s is shared by the clone", path)
		}
		if a.Kind() == reflect.Pointer && !a.IsNil() {
			shared(t, path, a.Elem(), b.Elem())
		}
		if a.Kind() == reflect.Slice {
			for i := range min(a.Len(), b.Len()) {
				shared(t, path+"[]", a.Index(i), b.Index(i))
			}
		}
	}
}
