package wfid

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestJoin(t *testing.T) {
	if got := Join("acme", "ipgrant/42"); got != "acme/ipgrant/42" {
		t.Fatalf("Join(acme) = %q", got)
	}
	if got := Join("", "ipgrant/42"); got != "ipgrant/42" {
		t.Fatalf("Join(\"\") = %q, want the legacy id", got)
	}
	if Join("a", "ipgrant/1") == Join("b", "ipgrant/1") {
		t.Fatal("two prefixes build the same id")
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, ok := range []string{"acme", "ss-0123456789ab", "eu.prod_2", "a", strings.Repeat("x", MaxPrefixLen)} {
		if err := ValidatePrefix(ok); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "Acme", "two words", "-lead", "trail.", "ü",
		strings.Repeat("x", MaxPrefixLen+1)} {
		if err := ValidatePrefix(bad); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", bad)
		}
	}
}

func TestFromDeployment(t *testing.T) {
	id := uuid.MustParse("3f2a9c1d-7b4e-4a11-9c0d-1234567890ab")
	p := FromDeployment(id)
	if p != "ss-3f2a9c1d7b4e" {
		t.Fatalf("FromDeployment = %q", p)
	}
	if err := ValidatePrefix(p); err != nil {
		t.Fatalf("the derived prefix is invalid: %v", err)
	}
	if FromDeployment(uuid.New()) == FromDeployment(uuid.New()) {
		t.Fatal("two deployments derive the same prefix")
	}
}
