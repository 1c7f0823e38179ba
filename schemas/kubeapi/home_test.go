package kubeapi

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestHomeClaimName(t *testing.T) {
	long := strings.Repeat("x", 80)
	cases := map[string]string{
		"0190a3c2-7d4e-7b1a-9f00-1c2d3e4f5a6b": "home-0190a3c2-7d4e-7b1a-9f00-1c2d3e4f5a6b",
		"alice":                                "home-alice",
	}
	for key, want := range cases {
		if got := HomeClaimName(key); got != want {
			t.Errorf("HomeClaimName(%q) = %q, want %q", key, got, want)
		}
	}
	seen := map[string]string{}
	for _, key := range []string{"Alice", "alice@example.com", "alice-example-com", "alice.example.com", "-", "", "日本", long, long + "y"} {
		got := HomeClaimName(key)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("HomeClaimName(%q) = %q: %v", key, got, errs)
		}
		if !strings.HasPrefix(got, "home-") {
			t.Errorf("HomeClaimName(%q) = %q, want the home- prefix", key, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("HomeClaimName(%q) = HomeClaimName(%q) = %q", key, other, got)
		}
		seen[got] = key
	}
	if a, b := HomeClaimName("Alice"), HomeClaimName("Alice"); a != b {
		t.Errorf("not stable: %q, %q", a, b)
	}
}
