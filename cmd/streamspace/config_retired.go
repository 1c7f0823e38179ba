package main

import "sort"

// retiredVars are variables StreamSpace once documented and no longer
// reads, with what to do instead. Setting one is not an error (a deployment
// that still sets it keeps starting), but openRuntime warns, so nobody
// believes it has an effect. The value is never read, so never shown.
var retiredVars = map[string]string{
	// Documented as the "default webhook signing secret" but read by
	// nothing. It is not given that meaning: one secret shared by every
	// webhook created without its own would let any receiver holding it
	// forge deliveries to all the others, and rotating it would need every
	// such receiver changed at once. A webhook created without a secret gets
	// one generated for it, shown once.
	"WEBHOOK_SIGNING_SECRET": "it is ignored: every webhook has its own signing secret, generated at create " +
		"(or given as \"secret\") and changed with POST /api/webhooks/{id}/rotate-secret; unset it",
}

// retired returns a warning for each retired variable that is set.
func (e *envReader) retired() []string {
	var out []string
	for name, why := range retiredVars {
		if _, ok := e.raw(name); ok {
			out = append(out, name+" is no longer read: "+why)
		}
	}
	sort.Strings(out)
	return out
}
