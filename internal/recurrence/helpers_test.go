package recurrence

import (
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, fe := LoadZone(name)
	if fe != nil {
		t.Fatalf("zone %s: %v", name, fe)
	}
	return loc
}

func compile(t *testing.T, p Plan) *Schedule {
	t.Helper()
	s, errs := Compile(p, zone(t, p.Timezone))
	if errs != nil {
		t.Fatalf("compile %+v: %v", p, errs)
	}
	return s
}

func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// wantRuns checks NextN(after, len(want)) against exact RFC 3339 instants.
func wantRuns(t *testing.T, s *Schedule, after string, want ...string) {
	t.Helper()
	got := s.NextN(utc(t, after), len(want)+1)
	var gotS []string
	for _, g := range got {
		gotS = append(gotS, g.Format(time.RFC3339))
	}
	if len(gotS) > len(want) {
		gotS = gotS[:len(want)]
	}
	if len(gotS) != len(want) {
		t.Fatalf("after %s: got %v, want %v", after, gotS, want)
	}
	for i := range want {
		if gotS[i] != utc(t, want[i]).Format(time.RFC3339) {
			t.Fatalf("after %s: got %v, want %v", after, gotS, want)
		}
	}
}
